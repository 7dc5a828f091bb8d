"""Both sides' states of one HTTP/1 connection: h11's state machine, written out again.

The llhttp codec frames messages itself and must keep the same keep-alive, upgrade
and error rules as the h11 codec, so it runs this copy of h11's machine (h11/_state.py).
The rules:

- The client goes IDLE -request-> SEND_BODY -data*, end-> DONE. The server goes
  IDLE -(the client's request)-> SEND_RESPONSE -1xx*-> SEND_RESPONSE -response->
  SEND_BODY -data*, end-> DONE. A side whose peer closed goes to CLOSED.
- A request with ``Upgrade`` proposes UPGRADE, a CONNECT proposes CONNECT; a client
  that is DONE with a proposal pending MIGHT_SWITCH_PROTOCOL. A 101 accepts UPGRADE,
  a 2xx accepts CONNECT: both sides SWITCHED_PROTOCOL. Any other final response
  drops the proposals.
- Without keep-alive (``Connection: close`` or HTTP/1.0 on either head) DONE becomes
  MUST_CLOSE. A side that is DONE while the other CLOSED or failed MUST_CLOSE too.
- An event a state has no transition for is a ``ProtocolError``; the caller decides
  the status (a peer's fault 400, our own 500) and the side goes to ERROR.
"""

from __future__ import annotations

import enum
from typing import Final

from proxy.http.codec.base import ProtocolError


class State(enum.Enum):
    IDLE = "IDLE"
    SEND_RESPONSE = "SEND_RESPONSE"
    SEND_BODY = "SEND_BODY"
    DONE = "DONE"
    MUST_CLOSE = "MUST_CLOSE"
    CLOSED = "CLOSED"
    MIGHT_SWITCH_PROTOCOL = "MIGHT_SWITCH_PROTOCOL"
    SWITCHED_PROTOCOL = "SWITCHED_PROTOCOL"
    ERROR = "ERROR"

    # Identity hashing in C: Enum's own __hash__ is Python code, and the transition
    # tables are looked up several times per message.
    __hash__ = object.__hash__


class Ev(enum.Enum):
    REQUEST = "Request"
    INFORMATIONAL = "InformationalResponse"
    RESPONSE = "Response"
    DATA = "Data"
    END = "EndOfMessage"
    CLOSED = "ConnectionClosed"

    __hash__ = object.__hash__


_REQUEST: Final = Ev.REQUEST
_INFORMATIONAL: Final = Ev.INFORMATIONAL
_RESPONSE: Final = Ev.RESPONSE
_NOTHING: Final[dict[Ev, State]] = {}
IDLE: Final = State.IDLE
SEND_RESPONSE: Final = State.SEND_RESPONSE
SEND_BODY: Final = State.SEND_BODY
DONE: Final = State.DONE
MUST_CLOSE: Final = State.MUST_CLOSE
CLOSED: Final = State.CLOSED
MIGHT_SWITCH: Final = State.MIGHT_SWITCH_PROTOCOL
SWITCHED: Final = State.SWITCHED_PROTOCOL
ERROR: Final = State.ERROR

_ENDS: Final = {Ev.CLOSED: CLOSED}
_CLIENT: Final[dict[State, dict[Ev, State]]] = {
    IDLE: {Ev.REQUEST: SEND_BODY, Ev.CLOSED: CLOSED},
    SEND_BODY: {Ev.DATA: SEND_BODY, Ev.END: DONE},
    DONE: _ENDS,
    MUST_CLOSE: _ENDS,
    CLOSED: _ENDS,
}
_SERVER: Final[dict[State, dict[Ev, State]]] = {
    IDLE: {Ev.CLOSED: CLOSED, Ev.RESPONSE: SEND_BODY},
    SEND_RESPONSE: {Ev.INFORMATIONAL: SEND_RESPONSE, Ev.RESPONSE: SEND_BODY},
    SEND_BODY: {Ev.DATA: SEND_BODY, Ev.END: DONE},
    DONE: _ENDS,
    MUST_CLOSE: _ENDS,
    CLOSED: _ENDS,
}
# Joint states that move one side on: (client, server) -> (side is client, new state).
_JOINT: Final[dict[tuple[State, State], tuple[bool, State]]] = {
    (MIGHT_SWITCH, SWITCHED): (True, SWITCHED),
    (CLOSED, DONE): (False, MUST_CLOSE),
    (CLOSED, IDLE): (False, MUST_CLOSE),
    (ERROR, DONE): (False, MUST_CLOSE),
    (DONE, CLOSED): (True, MUST_CLOSE),
    (IDLE, CLOSED): (True, MUST_CLOSE),
    (DONE, ERROR): (True, MUST_CLOSE),
}


class Machine:
    """The two states plus keep-alive and the pending switch proposals."""

    __slots__ = ("client", "connect", "keep_alive", "server", "upgrade")

    def __init__(self) -> None:
        self.client = IDLE
        self.server = IDLE
        self.keep_alive = True
        self.upgrade = False  # an Upgrade proposal is pending
        self.connect = False  # a CONNECT proposal is pending

    def client_event(self, event: Ev) -> None:
        """The client sent ``event`` (a Request moves the server on too)."""
        new = _CLIENT.get(self.client, _NOTHING).get(event)
        if new is None:
            state = self.client.value
            raise ProtocolError(f"can't handle {event.value} when the client is {state}")
        self.client = new
        if event is _REQUEST:
            self.server = SEND_RESPONSE if self.server is IDLE else self._refuse(event)
        self.settle()

    def server_event(self, event: Ev, status: int = 0) -> None:
        """The server sent ``event``; ``status`` decides whether a proposal is taken."""
        state = self.server
        if event is _INFORMATIONAL and status == 101:
            if not self.upgrade:
                raise ProtocolError("a 101 without an Upgrade proposal")
            new: State | None = SWITCHED if state is SEND_RESPONSE else None
        elif event is _RESPONSE and self.connect and 200 <= status < 300:
            new = SWITCHED if state is SEND_RESPONSE else None
        else:
            if event is _RESPONSE:
                self.upgrade = self.connect = False
            new = _SERVER.get(state, _NOTHING).get(event)
        if new is None:
            raise ProtocolError(f"can't handle {event.value} when the server is {state.value}")
        self.server = new
        self.settle()

    def _refuse(self, event: Ev) -> State:
        raise ProtocolError(f"can't handle {event.value} when the server is {self.server.value}")

    def fail(self, client: bool) -> None:
        if client:
            self.client = ERROR
        else:
            self.server = ERROR
        self.settle()

    def no_keep_alive(self) -> None:
        self.keep_alive = False
        self.settle()

    def settle(self) -> None:
        """Fire the state-triggered transitions until nothing moves (h11's loop)."""
        quiet = self.keep_alive and not (self.upgrade or self.connect)
        if quiet and self.client is not MIGHT_SWITCH and (self.client, self.server) not in _JOINT:
            return  # the usual case: nothing can move
        while True:
            client, server = self.client, self.server
            pending = self.upgrade or self.connect
            if pending and self.client is DONE:
                self.client = MIGHT_SWITCH
            if not pending and self.client is MIGHT_SWITCH:
                self.client = DONE
            if not self.keep_alive:
                if self.client is DONE:
                    self.client = MUST_CLOSE
                if self.server is DONE:
                    self.server = MUST_CLOSE
            joint = _JOINT.get((self.client, self.server))
            if joint is not None:
                if joint[0]:
                    self.client = joint[1]
                else:
                    self.server = joint[1]
            if client is self.client and server is self.server:
                return

    def next_cycle(self) -> bool:
        """Both DONE: back to IDLE for the next exchange; False if not possible."""
        if self.client is not DONE or self.server is not DONE:
            return False
        self.client = self.server = IDLE
        return True
