#!/usr/bin/env python3
"""A pymodbus client (not our code) reading and writing redline-sim, for interop tests.

Usage: pymodbus_client.py ENV_PORT DOOR_PORT CRAC_PORT FIRE_PORT

Reads the environment sensor's input registers 0..3, the door controller's
coil 0 and discrete input 0, the CRAC's holding register 0 and the fire
panel's discrete inputs 0..1 (all unit 1); then writes the door lock coil to 1
(function 5), the CRAC setpoint register to 255 (function 6), and the fire
panel's coils 0..3 to [1, 0, 1, 0] (function 15) and reads them back. Prints one
JSON object with everything it saw.
"""
import json
import sys

from pymodbus.client import ModbusTcpClient


def client(port):
    c = ModbusTcpClient("127.0.0.1", port=port, timeout=2)
    if not c.connect():
        raise SystemExit(f"cannot connect to {port}")
    return c


def ok(r):
    if r.isError():
        raise SystemExit(f"modbus error: {r}")
    return r


def main():
    env_port, door_port, crac_port, fire_port = map(int, sys.argv[1:5])
    env, door, crac, fire = client(env_port), client(door_port), client(crac_port), client(fire_port)
    out = {}
    out["env_ir"] = ok(env.read_input_registers(0, count=4, device_id=1)).registers
    out["door_lock_before"] = int(ok(door.read_coils(0, count=1, device_id=1)).bits[0])
    out["door_contact"] = int(ok(door.read_discrete_inputs(0, count=1, device_id=1)).bits[0])
    out["crac_setpoint_before"] = ok(crac.read_holding_registers(0, count=1, device_id=1)).registers[0]
    out["fire_di"] = [int(b) for b in ok(fire.read_discrete_inputs(0, count=2, device_id=1)).bits[:2]]
    ok(door.write_coil(0, True, device_id=1))
    ok(crac.write_register(0, 255, device_id=1))
    ok(fire.write_coils(0, [True, False, True, False], device_id=1))
    out["door_lock_after"] = int(ok(door.read_coils(0, count=1, device_id=1)).bits[0])
    out["crac_setpoint_after"] = ok(crac.read_holding_registers(0, count=1, device_id=1)).registers[0]
    out["fire_coils_after"] = [int(b) for b in ok(fire.read_coils(0, count=4, device_id=1)).bits[:4]]
    # A unit id the gateway does not serve gets a Modbus exception, not silence.
    r = env.read_input_registers(0, count=1, device_id=9)
    out["other_unit_is_error"] = bool(r.isError())
    for c in (env, door, crac, fire):
        c.close()
    print(json.dumps(out))


if __name__ == "__main__":
    main()
