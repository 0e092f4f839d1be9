// Package accounting is qinsaudit's model of a model file and its memory
// accounting: what the loaders found, what each tensor is for, and exactly
// how many bytes each tensor and each group of tensors takes. It uses the
// standard library only; the loaders, the heap-profile readers, the decode
// pass and the renderers all build on it.
//
// An audit goes in four steps:
//
//  1. A loader fills a Model from file headers alone: its Files and every
//     Tensor's name, dtype, shape, storage and file offset.
//  2. Classify gives every tensor a Class: its Role (EncodedLinear,
//     Embedding, Untouched, OptimizerState), its part within its module
//     ("weight", "sign", "scale", ...) and its encoding Scheme, from the
//     built-in scheme table (one row per scheme) and a user's rules.
//  3. Audit accounts for every tensor in a Row, with three figures in bytes:
//     theoretical (the elements times the dtype's size, in whole blocks),
//     stored (what the file holds for the tensor's storage, charged once to
//     the first tensor that uses it) and baseline (the logical weight in the
//     baseline float dtype, float32 unless told otherwise). Rows are summed
//     by role, module, layer and dtype into Groups, and per file, where the
//     overhead is the file's size less its stored tensor bytes.
//  4. Findings say what the figures alone do not: an encoded weight that is
//     no smaller than its float form, a label that disagrees with the
//     tensors, bytes no tensor holds.
//
// Compare then holds a heap measurement (from a heap profile, see
// accounting/heapcheck) against the accounting: each Comparison has a typed
// Verdict, and a measurement that no explanation fits is Inconclusive or
// Unexplained, never a guess.
//
// Every figure is an integer count of bytes or elements; ratios are
// float64. The few formatting helpers (ByteSize, Comma) are for the
// messages of findings and comparisons; renderers format the figures
// themselves.
package accounting
