package faultnet

import (
	"context"
	"fmt"
	"math"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	mcsimv1 "github.com/mcsim/mcsim/proto/mcsim/v1"
)

// Server serves the control API (mcsim.v1.FaultService) of one node's
// layer. Register it on the node's gRPC server with
// mcsimv1.RegisterFaultServiceServer.
type Server struct {
	mcsimv1.UnimplementedFaultServiceServer
	layer    *Layer
	setClock func(rate float64) error
}

// NewServer returns the control API of layer. setClock, if not nil, is
// handed each request's clock_rate, with 0 (not set: real time) handed as
// 1, and refuses a rate it cannot take by returning an error, which the
// caller sees as InvalidArgument. A node without a clock to change passes
// nil: it refuses every rate but 0 and 1.
func NewServer(layer *Layer, setClock func(rate float64) error) *Server {
	return &Server{layer: layer, setClock: setClock}
}

// SetFaults checks the whole request before it changes anything: a
// request refused (InvalidArgument, naming the field) leaves the table
// and the clock as they were.
func (s *Server) SetFaults(_ context.Context, req *mcsimv1.SetFaultsRequest) (*mcsimv1.SetFaultsResponse, error) {
	t, err := FromProto(req)
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	rate := req.GetClockRate()
	switch {
	case math.IsNaN(rate) || math.IsInf(rate, 0) || rate < 0:
		return nil, status.Errorf(codes.InvalidArgument, "clock_rate: %v is not a rate (0 or 1: real time)", rate)
	case s.setClock == nil && rate != 0 && rate != 1:
		return nil, status.Errorf(codes.InvalidArgument, "clock_rate: %v: this node's clock runs in real time only (0 or 1)", rate)
	case s.setClock != nil:
		if rate == 0 {
			rate = 1
		}
		if err := s.setClock(rate); err != nil {
			return nil, status.Errorf(codes.InvalidArgument, "clock_rate: %v", err)
		}
	}
	if err := s.layer.Set(t); err != nil {
		// FromProto validated the table: this is a bug, not bad input.
		return nil, status.Error(codes.Internal, fmt.Sprintf("table validated but refused: %v", err))
	}
	return &mcsimv1.SetFaultsResponse{}, nil
}
