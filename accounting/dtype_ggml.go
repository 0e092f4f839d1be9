package accounting

// ggmlDTypes are GGML's tensor types that have no PyTorch equivalent.
// (GGUF loader fills this table; see issue 5.)
var ggmlDTypes = []DType{}
