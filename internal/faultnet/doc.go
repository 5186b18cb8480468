// Package faultnet is the fault layer inside every mcsim node process: it
// applies the scenario runner's partitions, isolations, one-way delays
// (with jitter) and one-way loss to every link the node has, the gRPC
// streams to and from the other nodes and memberlist's gossip (UDP packets
// and TCP streams) alike, and removes them completely when they heal.
//
// It sits in the node's own sockets (a dialer, a listener wrapper, a
// packet send hook) rather than in a proxy between processes, because a
// proxy only sees connections opened through it after it was put in
// place: a fault must apply to a connection that is already open (gRPC
// keeps one connection for hours), and a table change reaches every
// stream at its next write.
//
// # The sender applies the link
//
// A link is one direction: From→To. Node X applies the links whose From
// is X to what X sends, and never delays or drops what it reads. A
// partition A|B is the two links A→B and B→A, each applied by its own
// sender; a one-way cut is one of them. Every one-way fault is thus
// applied exactly once, whichever node opened the connection.
//
// # Loss on a stream is a retransmission
//
// TCP does not lose bytes: it resends a lost segment after a
// retransmission timeout, and everything behind it waits. So a write on a
// stream is a transmission, lost with the link's loss probability (one
// draw), and a lost write is retransmitted 200 ms later (RFC 6298's
// initial RTO), then at a timeout doubling each time it is lost again (up
// to a minute); after 15 losses it goes through. Each retransmission is
// judged under the table as it is at that moment, not as it was when the
// write was made: once the loss has healed the next retransmission gets
// through, and one that finds the link cut is held until the table
// changes and is sent again then, under the new link (starting over at
// 200 ms if it is lost again). Everything written behind a lost write
// waits for it, so the stream stays in order; only datagrams are dropped
// (a lost datagram is gone). A cut stream holds its bytes and sends them
// on heal, in order, as retransmission would: what was written during the
// cut is sent at the heal, the healed link's latency counted from then. A
// writer on a faulted stream is answered at once, as by a kernel send
// buffer, until 4 MiB are held.
//
// # The preamble
//
// A dialed stream knows its peer: the address it dialed, looked up in the
// table's address book at each write (so a stream opened before the book
// arrived is faulted once it does). An accepted stream does not: its
// remote address is an ephemeral port. So every dial through the layer
// first sends a preamble, "MCSIMFN1", a length byte and the dialer's node
// id, and the listener's streams read it before anything else. A stream
// that opens with anything else (the runner's control client, grpcurl,
// grpc_health_probe) gets its bytes untouched and is never faulted: that
// is why the control API is never cut off by the faults it controls. The
// preamble is read lazily, at the stream's first Read or Write, never in
// Accept, so a slow client cannot stall the accept loop.
//
// # Time and randomness
//
// Jitter and loss come from one seeded PCG source per layer (the table's
// seed and the node id), so a run's choices repeat with its seed. Time is
// the time package's: under testing/synctest the tests run in virtual
// time.
package faultnet
