"""A Modbus server for eitwatch's tests, built on pymodbus (an implementation none of us
wrote): Modbus TCP, RTU over TCP (a serial gateway), or RTU on a serial port (one end of a
socat pty pair). Every slave holds fixed values; the tests know them exactly.

    python modbus_server.py --port N [--framer socket|rtu] [--devices 1,2] [--ignore-missing]
    python modbus_server.py --serial /path/to/pty [--baud 9600] [--devices 1,2] [--ignore-missing]

--ignore-missing: a request to a slave id not in --devices gets no answer at all (a dead
slave on the bus) instead of exception 0x0B.

Holding registers of every slave (protocol addresses, zero-based):
  0-1   f32 ABCD  7.25        (pH)
  2-3   f32 CDAB  31.5        (TSS, mg/L)
  4     u16       253         (temperature, x0.1 degC -> 25.3)
  5-6   i32 ABCD  -1200
  7     u16       1000 + slave id (which slave answered)
  8     u16       0xA005      (bits 0, 2, 13, 15 set)
  10-11 u32 ABCD  85250       (COD in ug/L -> 85.25 mg/L)
  100-179 the type matrix: for each type of TYPES, for each order of ORDERS, its value of
        VALUES encoded in that order, packed back to back (20 registers per order round).
Input registers: 0-1 f32 ABCD 42.5.
Coils 0-15: COILS. Discrete inputs 0-7: DISCRETE.
Prints "ready <port or serial path>" once serving.
"""
import argparse
import asyncio
import struct

from pymodbus import FramerType
from pymodbus.datastore import ModbusDeviceContext, ModbusSequentialDataBlock, ModbusServerContext
from pymodbus.exceptions import NoSuchIdException
from pymodbus.server import ModbusSerialServer, ModbusTcpServer

TYPES = ["u16", "i16", "u32", "i32", "u64", "i64", "f32", "f64"]
ORDERS = ["ABCD", "DCBA", "BADC", "CDAB"]
FORMATS = {"u16": "H", "i16": "h", "u32": "I", "i32": "i", "u64": "Q", "i64": "q", "f32": "f", "f64": "d"}
VALUES = {
    "u16": 51234,
    "i16": -12345,
    "u32": 3000000123,
    "i32": -1234567890,
    "u64": 0x00123456789ABCDE,
    "i64": -0x00123456789ABCDE,
    "f32": 1234.5625,
    "f64": -98765.4321,
}
MATRIX_START = 100
COILS = [1, 0, 1, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1]
DISCRETE = [0, 1, 1, 0, 0, 0, 0, 1]


def encode(kind, value, order):
    """Words in wire order; ORDERS name the big-endian bytes A B C D ... in arrival order."""
    raw = struct.pack(">" + FORMATS[kind], value)
    words = [raw[i:i + 2] for i in range(0, len(raw), 2)]
    if order in ("BADC", "DCBA"):
        words = [w[::-1] for w in words]
    if order in ("CDAB", "DCBA"):
        words = words[::-1]
    return [int.from_bytes(w, "big") for w in words]


def holding(device_id):
    regs = encode("f32", 7.25, "ABCD") + encode("f32", 31.5, "CDAB") + [253] + encode("i32", -1200, "ABCD")
    regs += [1000 + device_id, 0xA005, 0] + encode("u32", 85250, "ABCD")
    regs += [0] * (MATRIX_START - len(regs))
    for kind in TYPES:
        for order in ORDERS:
            regs += encode(kind, VALUES[kind], order)
    return regs


class OnlyKnownDevices:
    """pymodbus 3.16 answers a request for an unknown slave id from slave 0's data, or with a
    KeyError turned into exception 0x04; a real bus has no such slave. This says "no such
    id", which the server turns into silence (--ignore-missing) or exception 0x0B."""

    def __init__(self, core):
        self.core = core

    def device_ids(self):
        return self.core.device_ids()

    async def async_getValues(self, device_id, *args):
        if device_id not in self.core.device_ids():
            raise NoSuchIdException(f"no slave {device_id}")
        return await self.core.async_getValues(device_id, *args)

    async def async_setValues(self, device_id, *args):
        if device_id not in self.core.device_ids():
            raise NoSuchIdException(f"no slave {device_id}")
        return await self.core.async_setValues(device_id, *args)


def device(device_id):
    # pymodbus 3.16 data blocks are addressed from 1: protocol address 0 reads block address 1.
    return ModbusDeviceContext(
        hr=ModbusSequentialDataBlock(1, holding(device_id)),
        ir=ModbusSequentialDataBlock(1, encode("f32", 42.5, "ABCD")),
        co=ModbusSequentialDataBlock(1, [bool(b) for b in COILS]),
        di=ModbusSequentialDataBlock(1, [bool(b) for b in DISCRETE]),
    )


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int)
    parser.add_argument("--serial")
    parser.add_argument("--baud", type=int, default=9600)
    parser.add_argument("--framer", choices=["socket", "rtu"], default="socket")
    parser.add_argument("--devices", default="1")
    parser.add_argument("--ignore-missing", action="store_true")
    args = parser.parse_args()
    ids = [int(x) for x in args.devices.split(",")]
    context = ModbusServerContext(devices={i: device(i) for i in ids}, single=False)
    if args.serial:
        server = ModbusSerialServer(context, framer=FramerType.RTU, port=args.serial, baudrate=args.baud,
                                    ignore_missing_devices=args.ignore_missing)
        where = args.serial
    else:
        framer = FramerType.RTU if args.framer == "rtu" else FramerType.SOCKET
        server = ModbusTcpServer(context, framer=framer, address=("127.0.0.1", args.port),
                                 ignore_missing_devices=args.ignore_missing)
        where = args.port
    server.context = OnlyKnownDevices(server.context)
    # Returns once the port is open (listening, or the serial device opened).
    await server.serve_forever(background=True)
    print(f"ready {where}", flush=True)
    await asyncio.Event().wait()

if __name__ == "__main__":
    asyncio.run(main())
