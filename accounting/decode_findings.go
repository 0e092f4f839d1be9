package accounting

// NotDecoded: a weight the decode pass loads but cannot decode (no decoder
// for its scheme, e.g. GGUF block types): the pass's decoded figures leave
// out its decoded copy.
const NotDecoded FindingKind = "not-decoded"
