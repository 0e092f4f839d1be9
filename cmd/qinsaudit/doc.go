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
//	qinsaudit audit [--format text|json|markdown] [--by role|module|layer|tensor]
//	                [--sort KEY] [--top N] [--bytes] [--baseline fp32|fp16|bf16] PATH...
//
// The manual is docs/usage.md; its examples are run by this package's
// tests against the bundled fixtures, so they stay true. The JSON report is
// described in docs/json-schema.md.
//
// # Exit codes
//
//	0  the command ran; any gate it applies passed
//	1  bad input: a file is missing, unreadable or malformed
//	2  usage error: unknown command or flag, bad value, missing argument
//	3  a gate failed
package main
