// Qinsaudit audits the memory accounting of compressed and quantized
// neural-network weights.
//
// It reads model files header-only (PyTorch zip and legacy checkpoints,
// safetensors single or sharded, GGUF), classifies every tensor (encoded
// linear, embedding, untouched, and the side tensors of quantization
// schemes), and accounts exactly for the bytes each takes: parameters, the
// fp32 baseline, theoretical bytes (numel x element size) and the bytes the
// file really stores, with findings such as "encoded but still float32".
//
// Usage:
//
//	qinsaudit audit [--format text|json|markdown|csv|pprof] [--by role|module|layer|dtype|tensor]
//	                [--sort KEY] [--top N] [--bytes] [--baseline fp32|fp16|bf16] [--rules FILE] [--no-cache] PATH...
//	qinsaudit check [--config qinsaudit.yaml] [--max-bits-per-weight ROLE=X] [--min-ratio ROLE=X]
//	                [--max-stored ROLE=SIZE] [--forbid KIND] [--against BASE.json --max-growth 1%
//	                [--update-against]] PATH...
//	qinsaudit diff [--by role|layer|module|dtype|tensor] [--format text|json|markdown|csv] OLD NEW
//	qinsaudit decode [--cache|--stream] [--forward] [-o DIR] PATH...
//	qinsaudit crosscheck --heap PROFILE [--heap-base PROFILE] [--focus REGEX] [--claim NAME=SIZE] PATH...
//	qinsaudit profile [--allocator tcmalloc|jemalloc] [--sample-bytes N] [-o DIR] --model PATH
//	                  [--claim NAME=SIZE] [--max-heap-over-stored X] -- COMMAND [ARGS...]
//
// A PATH of audit, check, diff and crosscheck may be a remote model,
// hf://ORG/REPO[@REV][/PATH] or an https:// URL, read header-only over
// HTTP range requests (HF_ENDPOINT, HF_TOKEN; docs/usage.md).
//
// The manual is docs/ (usage.md, ci.md, usage-decode.md, heap-recipe.md);
// every "$ qinsaudit" example there is run by this package's tests against
// the bundled fixtures, so the docs stay true. The JSON report is described
// in docs/json-schema.md and docs/report.schema.json.
//
// # Exit codes
//
//	0  the command ran; any gate it applies passed
//	1  bad input: a file is missing, unreadable or malformed
//	2  usage error: unknown command or flag, bad value, missing argument
//	3  a gate failed
//
// profile exits with the profiled command's own code when that failed.
package main
