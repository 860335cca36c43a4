#!/usr/bin/env python3
"""Drives `redline-console` with a real browser: headless Chromium through Selenium (PyPI
`selenium`, Debian `chromium` + `chromium-driver`), plus a raw HTTP client for the refusals.

Usage:
  console_browser_driver.py --url URL --sim-control SIM.SOCK --agent-socket AGENT.SOCK
                            --agent-uid UID --audit AUDIT.JSONL [--screenshot PNG]

URL is the one redline-console printed (with its token). The agent's writes go to the agent
socket as UID (through setpriv, so the daemon sees that uid); the plant is read on the
simulator's control socket (plant.get) and the audit log from its file, independently of the
console. Prints one PASS/FAIL line per check and a summary; exits 1 if any check failed, 2 if
the session itself broke.
"""
import argparse
import http.client
import json
import socket
import subprocess
import sys
import time
import traceback
import urllib.parse

from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException, TimeoutException
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import WebDriverWait

results = []


def check(name, ok, detail=""):
    results.append((name, bool(ok)))
    line = f"{'PASS' if ok else 'FAIL'} {name}"
    if detail and (not ok or len(detail) < 160):
        line += f" -- {detail}"
    print(line, flush=True)
    return bool(ok)


def rpc_unix(path, method, params, uid=None):
    """One JSON-RPC call on a Unix socket; as `uid` through setpriv when given."""
    line = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}) + "\n"
    if uid is None:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(10)
        s.connect(path)
        try:
            s.sendall(line.encode())
            buf = b""
            while b"\n" not in buf:
                chunk = s.recv(65536)
                if not chunk:
                    break
                buf += chunk
        finally:
            s.close()
    else:
        client = ("import socket,sys;s=socket.socket(socket.AF_UNIX);s.settimeout(10);s.connect(sys.argv[1]);"
                  "s.sendall(sys.stdin.buffer.read());b=b''\n"
                  "while b'\\n' not in b:\n c=s.recv(65536)\n if not c: break\n b+=c\n"
                  "sys.stdout.buffer.write(b)")
        out = subprocess.run(["/usr/bin/setpriv", "--reuid", str(uid), "--regid", str(uid), "--clear-groups",
                              sys.executable, "-c", client, path], input=line.encode(), capture_output=True, timeout=20)
        buf = out.stdout
    return json.loads(buf.split(b"\n", 1)[0])


def plant(control):
    return rpc_unix(control, "plant.get", {})["result"]


def agent_write(args, point, value, reason):
    return rpc_unix(args.agent_socket, "points.write", {"id": point, "value": value, "reason": reason}, uid=args.agent_uid)


def audit_records(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(l) for l in f if l.strip()]


def wait_for(pred, timeout=10.0, step=0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(step)
    return pred()


def raw(host, port, method, path, headers=None, body=None):
    """A plain HTTP request (no browser, no cookies unless given): (status, body text)."""
    c = http.client.HTTPConnection(host, port, timeout=10)
    try:
        c.request(method, path, body=body, headers=headers or {})
        r = c.getresponse()
        return r.status, r.read().decode("utf-8", "replace")
    finally:
        c.close()


def refusals(url):
    u = urllib.parse.urlsplit(url)
    token = urllib.parse.parse_qs(u.query)["token"][0]
    host, port = u.hostname, u.port
    me = f"http://127.0.0.1:{port}"
    form = "requestId=r-none"
    ctype = {"Content-Type": "application/x-www-form-urlencoded"}

    st, _ = raw(host, port, "GET", "/")
    check("GET / without the token is refused (401)", st == 401, f"got {st}")
    st, _ = raw(host, port, "GET", "/fragments")
    check("GET /fragments without the token is refused (401)", st == 401, f"got {st}")
    st, _ = raw(host, port, "GET", "/events")
    check("GET /events without the token is refused (401)", st == 401, f"got {st}")
    st, _ = raw(host, port, "GET", "/?token=" + token[:-1] + ("0" if token[-1] != "0" else "1"))
    check("GET / with a wrong token is refused (401)", st == 401, f"got {st}")
    st, _ = raw(host, port, "POST", "/approve", {**ctype, "Origin": me}, form)
    check("POST /approve without the token is refused (401)", st == 401, f"got {st}")

    # The token is valid (the same request from our own origin gets through to the daemon,
    # which answers that there is no such request: 409), but a foreign origin is refused.
    st, body = raw(host, port, "POST", "/approve", {**ctype, "Origin": me, "Accept": "application/json",
                                                    "Cookie": f"redline_console={token}"}, form)
    check("control: POST /approve with the token from our own origin reaches the daemon (409 no such request)",
          st == 409 and "no request" in body, f"got {st} {body[:200]}")
    st, body = raw(host, port, "POST", "/approve", {**ctype, "Origin": "http://evil.example",
                                                    "Cookie": f"redline_console={token}"}, form)
    check("cross-origin POST /approve with the valid token (cookie) is refused (403)", st == 403, f"got {st} {body[:200]}")
    st, body = raw(host, port, "POST", f"/deny?token={token}", {**ctype, "Origin": "http://evil.example"}, form)
    check("cross-origin POST /deny with the valid token (query) is refused (403)", st == 403, f"got {st}")
    st, body = raw(host, port, "POST", "/release", {**ctype, "Cookie": f"redline_console={token}"}, "agent=facilities-agent")
    check("POST /release with the token but neither Origin nor Referer is refused (403)", st == 403, f"got {st}")
    st, body = raw(host, port, "GET", "/", {"Host": f"evil.example:{port}", "Cookie": f"redline_console={token}"})
    check("a request naming another Host (DNS rebinding) is refused (403)", st == 403, f"got {st}")


def fresh(fn, timeout=5.0):
    """Runs fn, again if the page swapped the element out under it (each event re-renders the
    sections: an element found before may be replaced by its fresh copy)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return fn()
        except StaleElementReferenceException:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def browser():
    o = Options()
    o.binary_location = "/usr/bin/chromium"
    for a in ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1000,1400",
              "--no-first-run", "--disable-extensions"]:
        o.add_argument(a)
    return webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=o)


def session(args):
    d = browser()
    try:
        d.set_page_load_timeout(20)
        d.get(args.url)
        check("the page loads with the token and the URL loses it (cookie set)",
              "token=" not in d.current_url and "Redline console" in d.title, f"url {d.current_url}, title {d.title!r}")
        wait = WebDriverWait(d, 15)
        wait.until(lambda d: "connected to redlined" in d.find_element(By.ID, "live").text)
        check("live updates connect (server-sent events)", True)
        ready = fresh(lambda: d.find_element(By.ID, "ready-state").text)
        check("readiness shows READY", ready == "READY", ready)
        check("no held request at first", fresh(lambda: len(d.find_elements(By.ID, "no-approvals"))) == 1)
        # A marker that a reload would erase.
        d.execute_script("window.__noReload = 'still here';")

        # (1) A held request from the real agent appears without a reload.
        reason = "<b>Trust me</b>: the auditor said \"lock it\" & approve now"
        r = agent_write(args, "sra-door.lock", 1, reason)
        rid = r.get("result", {}).get("requestId")
        check("the agent's sra-door.lock = 1 is held by the daemon", r.get("result", {}).get("outcome") == "held", json.dumps(r))
        sel = f'li[data-request-id="{rid}"]'
        try:
            wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, sel))
            appeared = True
        except TimeoutException:
            appeared = False
        check("the held request appears in the page without a reload",
              appeared and d.execute_script("return window.__noReload;") == "still here")
        if not appeared:
            return
        card = lambda: d.find_element(By.CSS_SELECTOR, sel)
        text = fresh(lambda: card().text)
        check("the card names the agent, the point and the value",
              "facilities-agent" in text and "sra-door.lock" in text and "= 1" in text, text)
        quote, bold, cap = fresh(lambda: (card().find_element(By.CSS_SELECTOR, ".untrusted blockquote").text,
                                          card().find_elements(By.CSS_SELECTOR, ".untrusted blockquote b"),
                                          card().find_element(By.CSS_SELECTOR, ".untrusted figcaption").text))
        check("the agent's reason is shown as its untrusted words, as text (no markup)",
              quote == reason and not bold and "untrusted" in cap, f"{quote!r} / {cap!r}")
        check("the card says what the policy would decide now", "If approved now" in text and "allowed" in text, text)
        left = int(fresh(lambda: card().find_element(By.CSS_SELECTOR, ".countdown").get_attribute("data-left")))
        check("the card shows the time left", 0 < left <= 300, str(left))
        if args.screenshot:
            d.save_screenshot(args.screenshot)
            print(f"screenshot: {args.screenshot}", flush=True)

        # (2) Approve in the page: the plant shows the door locked.
        before = plant(args.sim_control)["sra-door.lock"]
        check("the door is unlocked before the approval", before == 0, str(before))
        fresh(lambda: card().find_element(By.CSS_SELECTOR, "form.approve button").click())
        gone = wait_for(lambda: not d.find_elements(By.CSS_SELECTOR, sel), 10)
        check("the approved request leaves the page", gone)
        locked = wait_for(lambda: plant(args.sim_control)["sra-door.lock"] == 1, 10)
        check("after Approve in the page the plant shows sra-door.lock = 1 (locked)", locked,
              str(plant(args.sim_control)["sra-door.lock"]))
        res = wait_for(lambda: rid in d.find_element(By.ID, "result").text and d.find_element(By.ID, "result").text, 10)
        check("the page shows the daemon's answer to the approval", bool(res) and "executed" in res, str(res))
        recs = audit_records(args.audit)
        check("the audit log has the approval of that request",
              any(x.get("kind") == "approval" and x.get("requestId") == rid and x.get("action") == "approve" for x in recs))

        # (3) Deny one with a reason: the audit log shows it. Unlocking is the door's safe value
        # (allowed at once); locking again is held, and denied in the page.
        u = agent_write(args, "sra-door.lock", 0, "unlock for the cleaners")
        check("the agent unlocks the door (its safe value: no approval)", u.get("result", {}).get("outcome") == "executed"
              and wait_for(lambda: plant(args.sim_control)["sra-door.lock"] == 0, 10), json.dumps(u))
        r2 = agent_write(args, "sra-door.lock", 1, "lock it again, the cleaners are done")
        rid2 = r2.get("result", {}).get("requestId")
        check("the second sra-door.lock = 1 is held", r2.get("result", {}).get("outcome") == "held", json.dumps(r2))
        sel2 = f'li[data-request-id="{rid2}"]'
        try:
            wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, sel2))
        except TimeoutException:
            check("the second held request appears", False)
            return
        card2 = lambda: d.find_element(By.CSS_SELECTOR, sel2)
        why = "not during the change window (ticket 4711)"
        fid = fresh(lambda: card2().find_element(By.CSS_SELECTOR, "form.deny input[name=reason]").get_attribute("id"))
        label = fresh(lambda: d.find_element(By.CSS_SELECTOR, f'label[for="{fid}"]').text)
        check("the deny reason field has a label", "Reason" in label, label)
        # Keyboard only: focus the field, type, Tab to Deny, press Enter (a re-render keeps the focused field and its text).
        fresh(lambda: d.find_element(By.ID, fid).click())
        d.switch_to.active_element.send_keys(why)
        typed = fresh(lambda: d.find_element(By.ID, fid).get_attribute("value"))
        check("the reason is typed into the field", typed == why, repr(typed))
        d.switch_to.active_element.send_keys(Keys.TAB)
        focused = d.switch_to.active_element
        check("Tab moves from the reason to the Deny button", focused.text == "Deny", focused.text)
        focused.send_keys(Keys.ENTER)
        gone2 = wait_for(lambda: not d.find_elements(By.CSS_SELECTOR, sel2), 10)
        check("the denied request leaves the page", gone2)
        denied = wait_for(lambda: [x for x in audit_records(args.audit) if x.get("kind") == "approval"
                                   and x.get("requestId") == rid2], 10)
        check("the audit log shows the deny with the operator's reason",
              bool(denied) and denied[0].get("action") == "deny" and denied[0].get("reason") == why,
              json.dumps(denied))
        time.sleep(0.3)
        check("the denied lock was not written: the door stays unlocked", plant(args.sim_control)["sra-door.lock"] == 0)
        shown = wait_for(lambda: fresh(lambda: len(d.find_elements(By.CSS_SELECTOR, '#audit tr[data-kind="approval"]')) >= 2
                                       and d.find_element(By.ID, "audit-verify").text == "CHAIN VERIFIES"), 10)
        check("the audit section lists the approvals and the chain verifies", shown,
              fresh(lambda: d.find_element(By.ID, "audit").text[:400]))
        # Quarantine: red-line denials until the daemon quarantines the agent; Release in the page.
        row = 'tr[data-agent="facilities-agent"]'
        for _ in range(5):
            agent_write(args, "dispatch.cancel", 1, "cancel the false alarm")
            if fresh(lambda: d.find_elements(By.CSS_SELECTOR, f'{row} form[action="/release"]')):
                break
            time.sleep(0.2)
        shown_q = wait_for(lambda: fresh(lambda: d.find_elements(By.CSS_SELECTOR, f'{row} form[action="/release"] button')), 10)
        check("the quarantined agent appears with a Release button without a reload",
              bool(shown_q) and "QUARANTINED" in fresh(lambda: d.find_element(By.CSS_SELECTOR, row).text))
        if shown_q:
            fresh(lambda: d.find_element(By.CSS_SELECTOR, f'{row} form[action="/release"] button').click())
            released = wait_for(lambda: not rpc_unix(args.operator_socket, "agents.list", {})["result"]["agents"][0]["quarantined"]
                                if args.operator_socket else None, 10)
            check("Release in the page ends the quarantine (agents.list)", bool(released))
            check("the page shows the agent active again",
                  wait_for(lambda: "active" in fresh(lambda: d.find_element(By.CSS_SELECTOR, row).text), 10))
        check("no reload happened during the session", d.execute_script("return window.__noReload;") == "still here")
        if args.operator_socket:
            subs = rpc_unix(args.operator_socket, "status", {})["result"]["events"]["subscribers"]
            check("the daemon has one event subscriber, the console (not one per browser)", subs == 1, str(subs))
    finally:
        d.quit()


def after_restart(args):
    """The daemon was restarted under the running console: the console's one subscription
    reconnects, and a new held request still appears without a reload."""
    d = browser()
    try:
        d.set_page_load_timeout(20)
        d.get(args.url)
        wait = WebDriverWait(d, 20)
        try:
            wait.until(lambda d: "connected to redlined" in d.find_element(By.ID, "live").text)
            ok = True
        except TimeoutException:
            ok = False
        check("after the daemon restart the console is connected to redlined again", ok,
              d.find_element(By.ID, "live").text)
        d.execute_script("window.__noReload = 'still here';")
        r = agent_write(args, "sra-door.lock", 1, "after the restart")
        rid = r.get("result", {}).get("requestId")
        sel = f'li[data-request-id="{rid}"]'
        try:
            wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, sel))
            appeared = True
        except TimeoutException:
            appeared = False
        check("after the restart a held request appears without a reload",
              appeared and d.execute_script("return window.__noReload;") == "still here", json.dumps(r))
    finally:
        d.quit()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True)
    ap.add_argument("--sim-control", required=True)
    ap.add_argument("--agent-socket", required=True)
    ap.add_argument("--agent-uid", type=int, required=True)
    ap.add_argument("--audit", required=True)
    ap.add_argument("--screenshot")
    ap.add_argument("--operator-socket", help="to ask the daemon how many event subscribers it has")
    ap.add_argument("--phase", choices=["main", "after-restart"], default="main")
    args = ap.parse_args()
    t0 = time.monotonic()
    try:
        if args.phase == "main":
            refusals(args.url)
            session(args)
        else:
            after_restart(args)
    except Exception:
        traceback.print_exc()
        print("SESSION BROKEN", flush=True)
        sys.exit(2)
    failed = [n for n, ok in results if not ok]
    print(f"SUMMARY {len(results) - len(failed)} passed, {len(failed)} failed in {time.monotonic() - t0:.1f} s", flush=True)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
