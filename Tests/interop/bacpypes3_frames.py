#!/usr/bin/env python3
"""BACnet APDUs as bacpypes3 (PyPI; not our code) encodes and decodes them, for the codec
cross-check in RedlineCore's golden frames.

Usage: bacpypes3_frames.py encode          -> one line "NAME HEX" per message (whole APDU)
       bacpypes3_frames.py decode HEX...   -> one line per APDU: bacpypes3's reading of it
"""
import sys

from bacpypes3.apdu import (
    APDU, APCISequence, ReadPropertyRequest, ReadPropertyACK, ReadPropertyMultipleRequest,
    ReadPropertyMultipleACK, WritePropertyRequest, SubscribeCOVRequest, SimpleAckPDU, ErrorPDU,
    RejectPDU, AbortPDU, error_types,
)
from bacpypes3.basetypes import (
    ErrorType, PropertyReference, ReadAccessResult, ReadAccessResultElement,
    ReadAccessResultElementChoice, ReadAccessSpecification, StatusFlags,
)
from bacpypes3.constructeddata import Any
from bacpypes3.pdu import PDU
from bacpypes3.primitivedata import Null, ObjectIdentifier, Real


def request(r, invoke):
    r.apduInvokeID = invoke
    r.apduMaxSegs = 0
    r.apduMaxResp = 5  # the encoded field: 1476 octets
    r.apduSA = False
    return r


def messages():
    av1, bv2 = ObjectIdentifier("analog-value,1"), ObjectIdentifier("binary-value,2")
    yield "rp", request(ReadPropertyRequest(objectIdentifier=av1, propertyIdentifier="present-value"), 1)
    yield "rp-index", request(ReadPropertyRequest(objectIdentifier=av1, propertyIdentifier="priority-array", propertyArrayIndex=8), 2)
    yield "wp", request(WritePropertyRequest(objectIdentifier=av1, propertyIdentifier="present-value",
                                             propertyValue=Any(Real(21.5)), priority=9), 3)
    yield "wp-null", request(WritePropertyRequest(objectIdentifier=bv2, propertyIdentifier="present-value",
                                                  propertyValue=Any(Null(())), priority=9), 4)
    yield "rpm", request(ReadPropertyMultipleRequest(listOfReadAccessSpecs=[
        ReadAccessSpecification(objectIdentifier=av1, listOfPropertyReferences=[
            PropertyReference(propertyIdentifier="present-value"), PropertyReference(propertyIdentifier="status-flags")]),
        ReadAccessSpecification(objectIdentifier=bv2, listOfPropertyReferences=[
            PropertyReference(propertyIdentifier="priority-array", propertyArrayIndex=8)]),
    ]), 5)
    yield "cov", request(SubscribeCOVRequest(subscriberProcessIdentifier=7, monitoredObjectIdentifier=ObjectIdentifier("analog-input,3"),
                                             issueConfirmedNotifications=False, lifetime=300), 6)
    ack = ReadPropertyACK(objectIdentifier=av1, propertyIdentifier="present-value", propertyValue=Any(Real(21.5)))
    ack.apduInvokeID = 1
    yield "rp-ack", ack
    rpm = ReadPropertyMultipleACK(listOfReadAccessResults=[
        ReadAccessResult(objectIdentifier=av1, listOfResults=[
            ReadAccessResultElement(propertyIdentifier="present-value", readResult=ReadAccessResultElementChoice(propertyValue=Any(Real(21.5)))),
            ReadAccessResultElement(propertyIdentifier="status-flags", readResult=ReadAccessResultElementChoice(propertyValue=Any(StatusFlags([0, 0, 0, 0])))),
        ]),
        ReadAccessResult(objectIdentifier=bv2, listOfResults=[
            ReadAccessResultElement(propertyIdentifier="priority-array", propertyArrayIndex=8, readResult=ReadAccessResultElementChoice(propertyValue=Any(Null(())))),
            ReadAccessResultElement(propertyIdentifier="units", readResult=ReadAccessResultElementChoice(
                propertyAccessError=ErrorType(errorClass="property", errorCode="unknown-property"))),
        ]),
    ])
    rpm.apduInvokeID = 5
    yield "rpm-ack", rpm
    s = SimpleAckPDU()
    s.apduInvokeID, s.apduService = 3, 15
    yield "simple-ack", s
    e = error_types[12](errorClass="property", errorCode="unknown-property")
    e.apduInvokeID = 1
    yield "error", e
    j = RejectPDU()
    j.apduInvokeID, j.apduAbortRejectReason = 1, 9
    yield "reject", j
    a = AbortPDU()
    a.apduInvokeID, a.apduAbortRejectReason, a.apduSrv = 1, 4, True
    yield "abort", a


def whole(m):
    for k in ("apduSeg", "apduMor"):
        if getattr(m, k, None) is None:
            setattr(m, k, False)
    x = m.encode()
    for k in ("apduSeg", "apduMor", "apduSA"):
        if getattr(x, k, None) is None:
            setattr(x, k, getattr(m, k, False) or False)
    for k in ("apduMaxSegs", "apduMaxResp", "apduInvokeID", "apduService"):
        if getattr(x, k, None) is None and getattr(m, k, None) is not None:
            setattr(x, k, getattr(m, k))
    if not isinstance(x, PDU) or isinstance(x, APDU):
        x = x.encode()
    return bytes(x.pduData).hex()


def main():
    if sys.argv[1] == "encode":
        for name, m in messages():
            print(name, whole(m))
        return
    for h in sys.argv[2:]:
        apdu = APDU.decode(PDU(bytes.fromhex(h)))
        if apdu.apduType in (0, 3):
            seq = APCISequence.decode(apdu)
            fields = []
            for k in ("objectIdentifier", "propertyIdentifier", "propertyArrayIndex", "priority",
                      "subscriberProcessIdentifier", "monitoredObjectIdentifier", "lifetime"):
                v = getattr(seq, k, None)
                if v is not None:
                    fields.append(f"{k}={v}")
            if hasattr(seq, "listOfReadAccessSpecs") and seq.listOfReadAccessSpecs is not None:
                for spec in seq.listOfReadAccessSpecs:
                    refs = ",".join(f"{r.propertyIdentifier}" + (f"[{r.propertyArrayIndex}]" if r.propertyArrayIndex is not None else "")
                                    for r in spec.listOfPropertyReferences)
                    fields.append(f"{spec.objectIdentifier}:{refs}")
            print(type(seq).__name__, apdu.apduInvokeID, " ".join(fields))
        else:
            print(type(apdu).__name__, apdu.apduInvokeID)


if __name__ == "__main__":
    main()
