// Package mlsclientpb is the generated Go code of the MLS working group's
// interop protocol (mls_client.proto, the MLSClient gRPC service). The
// generated files are committed so that building needs no protobuf compiler.
//
// To regenerate (protoc 3.21 from Debian's protobuf-compiler,
// protoc-gen-go v1.36.12, protoc-gen-go-grpc v1.6.2), from this directory:
//
//	M='github.com/conclave-im/conclave/internal/interop/mlsclientpb;mlsclientpb'
//	protoc -I . --go_out=. --go_opt=paths=source_relative --go_opt=Mmls_client.proto=$M \
//	  --go-grpc_out=. --go-grpc_opt=paths=source_relative --go-grpc_opt=Mmls_client.proto=$M \
//	  mls_client.proto
package mlsclientpb
