"""Generated Python modules of the pink.v1 protobuf contract (protos/pink/v1).

The *_pb2.py, *_pb2_grpc.py modules and their .pyi stubs are written by
`make protos` (tools/gen_protos.py) and are not committed.
"""
