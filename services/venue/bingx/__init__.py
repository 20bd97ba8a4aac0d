"""The BingX USDT-M swap REST client: signing, rate budget, wire parsing, instruments."""
