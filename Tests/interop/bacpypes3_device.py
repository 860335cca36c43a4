#!/usr/bin/env python3
"""A BACnet/IP device written with bacpypes3 (PyPI; not our code), for RedlineIO interop tests.

Usage: bacpypes3_device.py PORT [DEVICE_INSTANCE]

Serves on 127.0.0.1:PORT (address 127.0.0.1/8:PORT) a device with:
  analog-value 1  "supply-setpoint"  commandable, relinquish-default 21.0 (units degrees-Celsius)
  binary-value 2  "exhaust-run"      commandable, relinquish-default active (1)
  analog-input 3  "room-temp"        22.5, status-flags normal, reliability no-fault-detected
  analog-input 4  "faulty-temp"      99.0, reliability open-loop, status-flags fault
Prints "ready" on stdout once bound. Runs until killed.
"""
import asyncio
import sys

from bacpypes3.argparse import SimpleArgumentParser
from bacpypes3.app import Application
from bacpypes3.local.analog import AnalogValueObjectCmd, AnalogInputObject
from bacpypes3.local.binary import BinaryValueObjectCmd


async def main():
    port = int(sys.argv[1])
    instance = int(sys.argv[2]) if len(sys.argv) > 2 else 1001
    args = SimpleArgumentParser().parse_args(
        ["--address", f"127.0.0.1/8:{port}", "--instance", str(instance), "--name", "bacpypes3-interop"]
    )
    app = Application.from_args(args)
    app.add_object(AnalogValueObjectCmd(
        objectIdentifier=("analog-value", 1), objectName="supply-setpoint",
        presentValue=21.0, relinquishDefault=21.0, units="degrees-celsius",
        statusFlags=[0, 0, 0, 0], outOfService=False, eventState="normal",
    ))
    app.add_object(BinaryValueObjectCmd(
        objectIdentifier=("binary-value", 2), objectName="exhaust-run",
        presentValue="active", relinquishDefault="active",
        statusFlags=[0, 0, 0, 0], outOfService=False, eventState="normal",
    ))
    app.add_object(AnalogInputObject(
        objectIdentifier=("analog-input", 3), objectName="room-temp", presentValue=22.5,
        statusFlags=[0, 0, 0, 0], reliability="no-fault-detected", outOfService=False,
        eventState="normal", units="degrees-celsius",
    ))
    app.add_object(AnalogInputObject(
        objectIdentifier=("analog-input", 4), objectName="faulty-temp", presentValue=99.0,
        statusFlags=[0, 1, 0, 0], reliability="open-loop", outOfService=False,
        eventState="normal", units="degrees-celsius",
    ))
    print("ready", flush=True)
    await asyncio.Future()


if __name__ == "__main__":
    asyncio.run(main())
