import ArgumentParser
import Dispatch
import Foundation
import PlantModel
import RedlineConfig
import RedlineCore

#if canImport(Glibc)
import Glibc
#endif

struct RedlineSim: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "redline-sim",
        abstract: "Simulate a site's plant and serve its Modbus and BACnet/IP devices, for tests and demos.",
        discussion: """
            Serves every Modbus device of the site on its configured bus: Modbus TCP \
            on the bus's host and port, Modbus RTU on a pseudo-terminal whose slave \
            side is symlinked at the bus's `device` path. Behind the devices runs a \
            plant model (room temperature, oxygen and CO2, CRAC units, exhaust, \
            occupancy, a latching fire panel, a dispatch gateway with a 30 s \
            countdown, door controller, suppression panel, lighting, air handler). \
            It starts calm: rooms empty at 22 °C, O2 20.9 %, CO2 0.04 %, everything \
            running, no alarm, doors unlocked, dispatch idle.

            When every server listens it prints one line on standard output:
              redline-sim: serving N devices, control at PATH

            CONTROL SOCKET (JSON-RPC 2.0, one object per line, Unix socket at --control):
              plant.get                       -> {name: value, ...} every plant variable
                                                 and every point's physical state
              plant.set {name, value}         -> {name, value}   act on the physical world
              plant.reset                     -> back to the initial plant, faults cleared
              plant.advance {seconds}         -> {time}   only with --clock manual
              device.fault {device, mode, delayMs?} -> {device, mode, delayMs}
              bacnet.set {point, priority, value} -> {point, priority, presentValue}
                                                 command a BACnet output at priority 1-16 as
                                                 someone else would (a person at 8); value
                                                 null releases that slot
              bacnet.flags {point, fault?, overridden?, outOfService?, inAlarm?, reliability?}
                                              -> {point, statusFlags, reliability}

            PLANT VARIABLES: ZONE.occupied, ZONE.temperature, ZONE.oxygen, ZONE.co2, \
            ZONE.humidity; DEVICE.failed (CRACs, fans, air handlers); DISPATCH.countdown \
            and DISPATCH.sent; and every point id (fire-panel.alarm, sra-door.lock, \
            dispatch.cancel, ...). Inputs that measure a zone read the zone variable.

            FAULT MODES: offline (TCP listener closed, connections refused; RTU silent), \
            timeout (no reply), exception (exception code 4), garbage (malformed frame), \
            wrong-unit (reply from another unit id), slow (reply after delayMs if \
            given, else min(50 ms, timeout/2)), none (healthy).

            DYNAMICS (see PlantModel's documentation): with every CRAC failed and \
            the exhaust failed, an occupied room passes 40 °C after ~3.4 min and \
            67 °C after ~12.5 min; CO2 rises 0.25 %/min and O2 falls 0.35 %/min \
            (CO2 hazard after ~110 s, O2 below 19.5 % after 4 min). Running units \
            bring it back. A dispatch countdown starts on a fire alarm or on a person \
            in a hazardous room; only the cancel coil stops it; at 0, DISPATCH.sent = 1.

            EXAMPLE:
              redline-sim --site Firmware-Configs/demo-datacenter.yaml \\
                  --control /tmp/sim.sock &
              socat - UNIX-CONNECT:/tmp/sim.sock
              {"jsonrpc":"2.0","id":1,"method":"plant.get"}
              {"jsonrpc":"2.0","id":2,"method":"plant.set",
               "params":{"name":"fire-panel.alarm","value":1}}
              {"jsonrpc":"2.0","id":3,"method":"device.fault",
               "params":{"device":"sra-env","mode":"timeout"}}
            (each request is one line; they are wrapped here to fit)

            BACNET/IP: every BACnet device is served on its bus's UDP endpoint (one device \
            per address and port; no routing), answering ReadProperty, ReadPropertyMultiple \
            and WriteProperty. Its Device object answers for its device instance; each point \
            is an object with Status_Flags, Reliability, Out_Of_Service and Event_State. \
            Outputs are commandable: a 16-slot Priority_Array and Relinquish_Default (the \
            plant's initial value); Present_Value is the highest non-null slot, else \
            Relinquish_Default, and is the output's plant value. A WriteProperty without a \
            priority writes at 16; anything but an output's Present_Value is refused \
            (write-access-denied). Inputs read the plant (a life-safety zone: quiet 0, \
            alarm 2). Fault modes: offline and timeout (no answer), exception (Error PDU, \
            device: other), garbage (BVLL length wrong), wrong-unit (answers as the next \
            device instance: its Device object has another Object_Identifier), slow. plant.reset also clears every \
            priority array and flag.

            An RTU bus is a multi-drop line: every device on it answers its own unit \
            id; frames for other unit ids, or with a bad CRC, go unanswered.
            """)

    @Option(name: .long, help: "The site configuration file (Firmware-Configs/NAME.yaml).")
    var site: String

    @Option(name: .long, help: "Directory of device profiles (default: <site dir>/../Devices).")
    var devices: String?

    @Option(name: .long, help: "Path of the control socket (a Unix socket).")
    var control: String

    @Option(name: .long, help: "Clock: 'real' (plant advances with wall time) or 'manual' (only plant.advance moves it).")
    var clock: String = "real"

    func validate() throws {
        guard clock == "real" || clock == "manual" else { throw ValidationError("--clock must be 'real' or 'manual'") }
    }

    func run() throws {
        signal(SIGPIPE, SIG_IGN)
        let loaded: Site
        do {
            loaded = try SiteLoader.load(siteFile: site, devicesDir: devices)
        } catch {
            FileHandle.standardError.write(Data("redline-sim: invalid site\n\(error)\n".utf8))
            throw ExitCode(2)
        }
        let sim = Simulator(site: loaded, manualClock: clock == "manual")
        let control: ControlServer
        do {
            control = try ControlServer(path: self.control, sim: sim)
        } catch {
            FileHandle.standardError.write(Data("redline-sim: \(error)\n".utf8))
            throw ExitCode(1)
        }
        var servers: [BusServer] = []
        var bacnetServers: [BACnetDeviceServer] = []
        /// A server that cannot start ends the simulator with its reason.
        func started(_ error: String?) throws {
            guard let error else { return }
            FileHandle.standardError.write(Data("redline-sim: \(error)\n".utf8))
            control.remove()
            throw ExitCode(1)
        }
        for bus in loaded.buses {
            switch bus.kind {
            case .modbusTCP, .modbusRTU:
                let s = BusServer(bus: bus, sim: sim)
                if s.deviceIDs.isEmpty { continue }
                try started(s.start())
                servers.append(s)
            case .bacnetIP:
                for d in sim.bacnetDevices where d.bus == bus.id {
                    guard let s = BACnetDeviceServer(bus: bus, device: d, sim: sim) else { continue }
                    try started(s.start())
                    bacnetServers.append(s)
                }
            case .gpio:
                continue
            }
        }
        sim.startClock()
        control.start()
        FileHandle.standardOutput.write(Data("redline-sim: serving \(sim.modbusDevices.count + bacnetServers.count) devices, control at \(self.control)\n".utf8))

        let stop: @Sendable () -> Void = {
            sim.stop()
            control.remove()
            for b in loaded.buses {
                if case .modbusRTU(let s) = b.kind,
                   let dest = try? FileManager.default.destinationOfSymbolicLink(atPath: s.device), dest.hasPrefix("/dev/pts/") {
                    unlink(s.device)
                }
            }
            Glibc.exit(0)
        }
        signal(SIGTERM, SIG_IGN)
        signal(SIGINT, SIG_IGN)
        let term = DispatchSource.makeSignalSource(signal: SIGTERM, queue: .main)
        term.setEventHandler(handler: stop)
        term.resume()
        let int = DispatchSource.makeSignalSource(signal: SIGINT, queue: .main)
        int.setEventHandler(handler: stop)
        int.resume()
        withExtendedLifetime((servers, bacnetServers, term, int)) { dispatchMain() }
    }
}

RedlineSim.main()
