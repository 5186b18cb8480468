// Package grpcopts holds the gRPC transport options every mcsim node uses
// between its processes: fixed flow-control windows, so gRPC does not
// estimate the bandwidth of each connection with PING frames.
//
// grpc-go grows a connection's window by bandwidth-delay-product
// estimation unless the window is set: every message received triggers a
// PING to time the round trip, and the PING's answer wakes both processes
// again. Between mcsim's nodes (tiny heartbeats, Status calls and lease
// renewals on loopback or a LAN) there is no bandwidth to discover, and on
// an idle 36-process cluster those PINGs were about a third of the gRPC
// wake-ups (README, "Measurements"). gRPC's default window (64 KiB, also
// its minimum) set explicitly switches the estimation off and changes
// nothing else.
package grpcopts

import "google.golang.org/grpc"

// Window is the flow-control window of every stream and connection: gRPC's
// own default and minimum, set explicitly.
const Window = 64 << 10

// Server returns the options of a node's gRPC server.
func Server() []grpc.ServerOption {
	return []grpc.ServerOption{grpc.InitialWindowSize(Window), grpc.InitialConnWindowSize(Window)}
}

// Dial returns the options of a node's gRPC client connections, to add to
// the credentials and connect parameters.
func Dial() []grpc.DialOption {
	return []grpc.DialOption{grpc.WithInitialWindowSize(Window), grpc.WithInitialConnWindowSize(Window)}
}
