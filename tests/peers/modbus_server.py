"""A Modbus TCP server for eitwatch's tests, built on pymodbus (an implementation none of
us wrote). Slave 1 holds fixed values in several types and byte orders; the test knows
them exactly.

    python modbus_server.py --port N

Holding registers of slave 1 (protocol addresses, zero-based):
  0-1   f32 ABCD  7.25        (pH)
  2-3   f32 CDAB  31.5        (TSS, mg/L)
  4     u16       253         (temperature, x0.1 degC -> 25.3)
  5-6   i32 ABCD  -1200       (unused by the e2e map; decoded in probes)
Prints "ready <port>" once listening.
"""
import argparse
import asyncio
import struct

from pymodbus.datastore import ModbusDeviceContext, ModbusSequentialDataBlock, ModbusServerContext
from pymodbus.server import StartAsyncTcpServer


def words(fmt, value):
    raw = struct.pack(">" + fmt, value)
    return [int.from_bytes(raw[i:i + 2], "big") for i in range(0, len(raw), 2)]


def registers():
    abcd = words("f", 7.25)
    cdab = list(reversed(words("f", 31.5)))
    return abcd + cdab + [253] + words("i", -1200)


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    # pymodbus 3.16 data blocks are addressed from 1: protocol address 0 reads block address 1.
    hr = ModbusSequentialDataBlock(1, registers())
    context = ModbusServerContext(devices={1: ModbusDeviceContext(hr=hr)}, single=False)
    server = asyncio.ensure_future(StartAsyncTcpServer(context=context, address=("127.0.0.1", args.port)))
    for _ in range(200):
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", args.port)
            writer.close()
            break
        except OSError:
            await asyncio.sleep(0.02)
    print(f"ready {args.port}", flush=True)
    await server


if __name__ == "__main__":
    asyncio.run(main())
