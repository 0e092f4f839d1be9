// Package decode runs a real decode pass over a model's tensors, so that the
// memory a runtime needs can be measured instead of computed by hand.
//
// A pass works in the order a runtime does:
//
//  1. Load reads every storage of every file into memory in its stored dtype,
//     one allocation per storage (tied tensors share it), at the file offset
//     the loader found (accounting.Tensor.DataOffset).
//  2. Run decodes each encoded linear to float32 with its scheme's own
//     arithmetic (QINS log and rational, PyTorch qint8, GPTQ int4) and widens
//     float16 and bfloat16 weights, layer by layer, splitting the work across
//     GOMAXPROCS goroutines. With Options.Batch set, each decoded weight is
//     multiplied with a batch of inputs: a forward pass, not a conversion.
//  3. Under the Cache policy every decoded weight is kept until the pass
//     ends; under Stream, each layer is decoded into one reused buffer sized
//     for the largest layer.
//  4. At named phases (after-load, after each layer, after-decode, end) Run
//     calls Options.Measure, which reports the heap in use at each allocation
//     site of this package. Reconcile then sets those measurements against
//     the accounting: stored bytes, the fp32 baseline of the decoded weights,
//     and the peak a streaming runtime would need.
//
// Every buffer comes from one of a few allocation sites, one per role of the
// bytes it holds (allocEncodedLinear, allocEmbedding, ..., allocDecoded,
// allocActivations), so a heap profile attributes memory by site: Site maps a
// profile's function name back to the role. The package does not profile
// anything itself; see internal/heapsnap.
//
// Bad input never panics: a storage past the end of its file, a truncated
// read, a storage without a fixed offset, a scheme whose side tensors are
// missing or misshapen are errors naming the file and the tensor. No buffer
// is allocated before its size has been checked against the file (stored
// data) or against the checked stored size (decoded weights).
package decode
