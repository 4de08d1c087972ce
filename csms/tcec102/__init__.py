"""T/CEC 102-2016 supervision-platform link, sans-I/O.

* :mod:`csms.tcec102.codec` -- envelope encoding/decoding: AES-128-CBC ``Data``,
  HMAC-MD5 ``Sig``, ``TimeStamp``/``Seq`` generation, ``Ret`` codes.
* :mod:`csms.tcec102.objects` -- builders for the standard's JSON objects
  (StationInfo, ConnectorStatusInfo, ChargeOrder, PolicyInfos ...) and the
  OCPP → T/CEC status and stop-reason mappings.

Neither module performs I/O. The link itself (issue 6):

* :mod:`csms.tcec102.server` -- our ``POST /evcs/v{version}/{interface}`` routes;
* :mod:`csms.tcec102.outbox` -- notifications queued in the transaction of their event;
* :mod:`csms.tcec102.sender` -- background delivery (one node per platform) and the scheduler;
* :mod:`csms.tcec102.platforms` -- counterpart configuration and status;
* :mod:`csms.tcec102.registry` -- our registry and live state as T/CEC objects;
* :mod:`csms.tcec102.api`, :mod:`csms.tcec102.cli` -- operator API and ``csms platform`` / ``csms tariffs``.
"""

from .codec import *  # noqa: F403 - the codec is this package's public API
from .codec import __all__  # noqa: F401
