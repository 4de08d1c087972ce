-- The light path of 2.x TransactionEvent(Updated) (csms.store.light_updates) sends a batch of events
-- as one array of this composite type: asyncpg encodes an array of records much more cheaply than
-- one array per column. Field order is the order of the tuples light_updates builds.
CREATE TYPE light_transaction_event AS (
    cp        text,
    tx        text,
    seq       integer,
    trig      text,
    ts        timestamptz,
    offline   boolean,
    evse      integer,
    conn      integer,
    cstate    text,
    nsamples  integer,
    version   text
);
