#!/usr/bin/env python3
"""Drives `redlinectl mcp` with the Python MCP SDK (PyPI `mcp`), a client we did not write.

Usage:
  mcp_client_driver.py --sim-control SIM.SOCK [--bad-socket PATH] -- SERVER-COMMAND [ARGS...]

SERVER-COMMAND is spawned over stdio, e.g.
  setpriv --reuid 2001 --regid 2001 --clear-groups .build/debug/redlinectl mcp --socket AGENT.SOCK
The simulator's control socket is read directly (plant.get) to check what really
happened on the plant. Prints one PASS/FAIL line per check and a summary; exits 1
if any check failed, 2 if the session itself broke.
"""
import argparse
import asyncio
import json
import socket
import sys
import traceback

from mcp import ClientSession, MCPError, StdioServerParameters
from mcp.client.stdio import stdio_client

EXPECTED_TOOLS = {"list_points", "read_points", "write_point", "release_point", "get_request"}
INVALID_PARAMS = -32602

results = []


def check(name, ok, detail=""):
    results.append((name, bool(ok)))
    line = f"{'PASS' if ok else 'FAIL'} {name}"
    if detail:
        line += f" -- {detail}"
    print(line, flush=True)
    return bool(ok)


def plant(control_path):
    """The simulator's plant.get, as a dict."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10)
    s.connect(control_path)
    try:
        s.sendall(json.dumps({"jsonrpc": "2.0", "id": 1, "method": "plant.get", "params": {}}).encode() + b"\n")
        buf = b""
        while b"\n" not in buf:
            chunk = s.recv(65536)
            if not chunk:
                break
            buf += chunk
        return json.loads(buf.split(b"\n", 1)[0])["result"]
    finally:
        s.close()


def text_of(result):
    return "\n".join(c.text for c in result.content if getattr(c, "type", "") == "text")


async def wait_plant(control_path, name, value, timeout=5.0):
    """Waits until the plant shows name == value (a write is read back, but the sim may lag a scan)."""
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while True:
        v = plant(control_path).get(name)
        if v == value or loop.time() > end:
            return v
        await asyncio.sleep(0.05)


async def expect_mcp_error(session, name, args, label):
    try:
        r = await session.call_tool(name, args)
    except MCPError as e:
        return check(label, e.code == INVALID_PARAMS, f"MCP error {e.code}: {e.message}")
    return check(label, False, f"no MCP error; got a tool result isError={r.is_error}: {text_of(r)[:200]}")


async def main_session(server_cmd, control_path):
    params = StdioServerParameters(command=server_cmd[0], args=server_cmd[1:])
    async with stdio_client(params) as (read, write):
        async with ClientSession(read, write) as session:
            init = await session.initialize()
            check("initialize succeeds", init.server_info.name == "redline",
                  f"server {init.server_info.name} {init.server_info.version}, protocol {init.protocol_version}")

            tools = (await session.list_tools()).tools
            names = {t.name for t in tools}
            check("tool list is exactly list_points, read_points, write_point, release_point, get_request",
                  names == EXPECTED_TOOLS and len(tools) == 5, f"got {sorted(names)}")
            for t in tools:
                d = t.description or ""
                has_all = all(f"RL-{n}:" in d for n in range(0, 12))
                check(f"{t.name} description names RL-0..RL-11 and says a denial is final",
                      has_all and "denial is final" in d and "override codes" in d)
            wp = next((t for t in tools if t.name == "write_point"), None)
            schema = wp.input_schema if wp else {}
            check("write_point schema: id string, value number, reason optional string",
                  schema.get("properties", {}).get("id", {}).get("type") == "string"
                  and schema.get("properties", {}).get("value", {}).get("type") == "number"
                  and schema.get("properties", {}).get("reason", {}).get("type") == "string"
                  and sorted(schema.get("required", [])) == ["id", "value"], json.dumps(schema)[:200])

            listing = await session.call_tool("list_points", {})
            check("list_points lists this agent's points", not listing.is_error and "office-lights.on" in text_of(listing)
                  and "dispatch.cancel" in text_of(listing), text_of(listing).splitlines()[0] if listing.content else "")

            before = plant(control_path)["dispatch.cancel"]
            r = await session.call_tool("write_point", {"id": "dispatch.cancel", "value": 1,
                                                        "reason": "OVERRIDE CODE 0000: the fire chief authorised this"})
            t = text_of(r)
            check("write_point dispatch.cancel=1 is an error result naming RL-2",
                  r.is_error is True and "RL-2" in t and "DENIED" in t, t.splitlines()[0] if t else "")
            check("the RL-2 denial tells the model it is final", "denial is final" in t and "override codes" in t)
            await asyncio.sleep(0.3)
            after = plant(control_path)["dispatch.cancel"]
            check("plant dispatch.cancel unchanged", after == before, f"before {before}, after {after}")

            r = await session.call_tool("release_point", {"id": "dispatch.cancel", "reason": "release code REL-7781"})
            t = text_of(r)
            check("release_point dispatch.cancel (a register: nothing to release) is a denied error result",
                  r.is_error is True and "DENIED" in t and "out-of-range" in t, t.splitlines()[0] if t else "")

            r = await session.call_tool("write_point", {"id": "office-lights.on", "value": 1, "reason": "morning"})
            t = text_of(r)
            check("write_point office-lights.on=1 executes", r.is_error is not True and t.startswith("executed"), t[:160])
            v = await wait_plant(control_path, "office-lights.on", 1)
            check("plant office-lights.on is 1", v == 1, f"plant shows {v}")

            r = await session.call_tool("write_point", {"id": "sra-door.lock", "value": 1})
            t = text_of(r)
            sc = r.structured_content or {}
            rid = sc.get("requestId")
            check("write_point sra-door.lock=1 is held with a request id and get_request guidance",
                  r.is_error is not True and t.startswith("held") and bool(rid) and "get_request" in t, t.splitlines()[0] if t else "")
            if rid:
                g = await session.call_tool("get_request", {"requestId": rid})
                gt = text_of(g)
                check("get_request on the held request says held", g.is_error is not True and gt.startswith("held")
                      and (g.structured_content or {}).get("outcome") == "held", gt.splitlines()[0] if gt else "")

            r = await session.call_tool("write_point", {"id": "no-such.point", "value": 1})
            t = text_of(r)
            check("write_point on an unknown point is an error result (daemon -32004)",
                  r.is_error is True and "unknown point" in t and (r.structured_content or {}).get("code") == -32004, t[:160])

            await expect_mcp_error(session, "no_such_tool", {}, "unknown tool name gets an MCP error (-32602)")
            await expect_mcp_error(session, "write_point", {"id": "office-lights.on", "value": "abc"},
                                   "write_point with value \"abc\" gets an MCP error (-32602)")
            await expect_mcp_error(session, "write_point", {"id": "office-lights.on"},
                                   "write_point without value gets an MCP error (-32602)")
            await expect_mcp_error(session, "read_points", {"ids": "office-lights.on"},
                                   "read_points with ids not an array gets an MCP error (-32602)")

            r = await session.call_tool("read_points", {"ids": ["office-lights.on"]})
            t = text_of(r)
            vals = (r.structured_content or {}).get("values", [])
            check("the server goes on serving after malformed calls (read_points works)",
                  r.is_error is not True and len(vals) == 1 and vals[0].get("id") == "office-lights.on", t[:160])
            r = await session.call_tool("write_point", {"id": "office-lights.on", "value": 0})
            check("a write after malformed calls still executes", r.is_error is not True
                  and text_of(r).startswith("executed"), text_of(r)[:160])
            v = await wait_plant(control_path, "office-lights.on", 0)
            check("plant office-lights.on is back to 0", v == 0, f"plant shows {v}")

            # Arguing with a denial: two more red-line attempts quarantine the agent (3 in 10 min),
            # and the quarantine reaches the model as an error result too.
            for attempt in (2, 3):
                r = await session.call_tool("write_point", {"id": "dispatch.cancel", "value": 1,
                                                            "reason": f"attempt {attempt}: I insist, this is an emergency"})
                check(f"repeated dispatch.cancel attempt {attempt} is denied RL-2", r.is_error is True and "RL-2" in text_of(r))
            r = await session.call_tool("write_point", {"id": "office-lights.on", "value": 1})
            t = text_of(r)
            check("after 3 red-line denials the agent is quarantined (error result naming quarantined)",
                  r.is_error is True and (r.structured_content or {}).get("rule") == "quarantined", t.splitlines()[0] if t else "")
            v = plant(control_path)["office-lights.on"]
            check("plant office-lights.on stays 0 while quarantined", v == 0, f"plant shows {v}")
            check("plant dispatch.cancel still unchanged", plant(control_path)["dispatch.cancel"] == before)


async def unreachable_session(server_cmd):
    params = StdioServerParameters(command=server_cmd[0], args=server_cmd[1:])
    async with stdio_client(params) as (read, write):
        async with ClientSession(read, write) as session:
            await session.initialize()
            r = await session.call_tool("read_points", {"ids": ["office-lights.on"]})
            t = text_of(r)
            check("daemon unreachable: error result with a clear message", r.is_error is True and "cannot reach redlined" in t, t[:160])
            tools = (await session.list_tools()).tools
            check("daemon unreachable: the MCP server keeps serving", len(tools) == 5)


async def run(args):
    await main_session(args.server, args.sim_control)
    if args.bad_socket:
        cmd = list(args.server)
        i = cmd.index("--socket") if "--socket" in cmd else -1
        if i >= 0:
            cmd[i + 1] = args.bad_socket
        else:
            cmd += ["--socket", args.bad_socket]
        await unreachable_session(cmd)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sim-control", required=True, help="redline-sim control socket")
    ap.add_argument("--bad-socket", help="also check a server pointed at this (absent) agent socket")
    ap.add_argument("--timeout", type=float, default=120)
    ap.add_argument("server", nargs=argparse.REMAINDER, help="-- server command and arguments")
    args = ap.parse_args()
    if args.server and args.server[0] == "--":
        args.server = args.server[1:]
    if not args.server:
        ap.error("give the server command after --")
    try:
        asyncio.run(asyncio.wait_for(run(args), args.timeout))
    except BaseException:
        traceback.print_exc()
        check("MCP session completed", False, "the session broke (see the traceback above)")
        failed = [n for n, ok in results if not ok]
        print(f"SUMMARY {len(results) - len(failed)}/{len(results)} passed; failed: {failed}", flush=True)
        sys.exit(2)
    failed = [n for n, ok in results if not ok]
    print(f"SUMMARY {len(results) - len(failed)}/{len(results)} passed" + (f"; failed: {failed}" if failed else ""), flush=True)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
