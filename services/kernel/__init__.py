"""KernelService: owns the Rust kernel (pink_kernel), its journal and its log."""
