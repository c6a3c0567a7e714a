#!/usr/bin/env bash
# The one code-generation path: proto/skiff/v1/*.proto -> proto/skiff/v1/*.ts (ts-proto, grpc-js
# services). Needs `protoc` (Debian: protobuf-compiler) and `npm ci`. Generated files are
# committed; test/unit checks that they match a fresh generation.
set -euo pipefail
cd "$(dirname "$0")"
out="${1:-.}"
protoc \
  --plugin=protoc-gen-ts_proto=../node_modules/.bin/protoc-gen-ts_proto \
  --ts_proto_out="$out" \
  --ts_proto_opt=outputServices=grpc-js,esModuleInterop=true,importSuffix=.js,forceLong=number,oneof=unions-value,useOptionals=none,env=both,useExactTypes=false \
  -I . skiff/v1/*.proto
