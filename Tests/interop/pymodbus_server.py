#!/usr/bin/env python3
"""A Modbus TCP server written with pymodbus (not our code), for RedlineIO interop tests.

Usage: pymodbus_server.py PORT UNIT

Unit UNIT holds a known register map (addresses are 0-based on the wire):
  discrete inputs 0..1 = [1, 0]
  input registers 0..3 = [-52 (two's complement 0xFFCC), 456, 2090, 40]
      -> as an environment sensor: -5.2 °C, 45.6 % RH, 20.90 % O2, 0.040 % CO2
  coils 0..3 = [0, 1, 0, 0]
  holding registers 0..1 = [215, 7]
Prints "ready" on stdout once listening. Runs until killed.
"""
import sys
import threading

from pymodbus.datastore import ModbusDeviceContext, ModbusSequentialDataBlock, ModbusServerContext
from pymodbus.server import StartTcpServer


def block(values):
    # pymodbus device contexts add 1 to the wire address; a block at 1 starts at wire address 0.
    return ModbusSequentialDataBlock(1, list(values) + [0] * 8)


def main():
    port, unit = int(sys.argv[1]), int(sys.argv[2])
    device = ModbusDeviceContext(
        di=block([1, 0]),
        co=block([0, 1, 0, 0]),
        hr=block([215, 7]),
        ir=block([0xFFCC, 456, 2090, 40]),
    )
    context = ModbusServerContext(devices={unit: device}, single=False)

    def announce():
        import socket, time
        for _ in range(200):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                print("ready", flush=True)
                return
            except OSError:
                time.sleep(0.05)

    threading.Thread(target=announce, daemon=True).start()
    StartTcpServer(context=context, address=("127.0.0.1", port))


if __name__ == "__main__":
    main()
