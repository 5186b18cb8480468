// Package mcsimv1 is the generated gRPC and protobuf code of mcsim's wire
// contract (see the .proto files beside it). Regenerate with
//
//	go tool -modfile=tools/go.mod buf generate
//
// and check the result in.
package mcsimv1
