#!/usr/bin/env python3
"""A BACnet/IP client written with bacpypes3 (PyPI; not our code): one WriteProperty or
ReadProperty, as an operator workstation would send it.

Usage: bacpypes3_client.py LOCAL_PORT DEVICE_PORT write OBJECT PROPERTY VALUE PRIORITY
       bacpypes3_client.py LOCAL_PORT DEVICE_PORT read OBJECT PROPERTY
OBJECT is "analog-value,1"; VALUE "null" relinquishes. Prints the value read, or "ok".
"""
import asyncio
import sys

from bacpypes3.argparse import SimpleArgumentParser
from bacpypes3.app import Application
from bacpypes3.pdu import Address
from bacpypes3.primitivedata import Null, ObjectIdentifier


async def main():
    local, device, op, obj, prop = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
    args = SimpleArgumentParser().parse_args(["--address", f"127.0.0.1/8:{local}", "--instance", "999"])
    app = Application.from_args(args)
    try:
        addr = Address(f"127.0.0.1:{device}")
        oid = ObjectIdentifier(obj)
        if op == "write":
            value, priority = sys.argv[6], int(sys.argv[7])
            v = Null(()) if value == "null" else (float(value) if "." in value else value)
            await app.write_property(addr, oid, prop, v, priority=priority)
            print("ok", flush=True)
        else:
            print(await app.read_property(addr, oid, prop), flush=True)
    finally:
        app.close()


if __name__ == "__main__":
    asyncio.run(main())
