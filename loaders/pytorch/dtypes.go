package pytorch

// storageType is what a torch storage class says about its bytes.
type storageType struct {
	dtype string // canonical dtype name (accounting.LookupDType)
	// elemBytes is torch's element_size for the class: a storage of numel
	// elements holds numel*elemBytes bytes. The packed 4- and 2-bit
	// quantized types count whole bytes.
	elemBytes int64
}

// storageTypes maps the typed storage classes torch.save names in
// persistent ids (torch.FloatStorage, ...) to their element type.
var storageTypes = map[string]storageType{
	"DoubleStorage":        {"float64", 8},
	"FloatStorage":         {"float32", 4},
	"HalfStorage":          {"float16", 2},
	"BFloat16Storage":      {"bfloat16", 2},
	"ComplexDoubleStorage": {"complex128", 16},
	"ComplexFloatStorage":  {"complex64", 8},
	"LongStorage":          {"int64", 8},
	"IntStorage":           {"int32", 4},
	"ShortStorage":         {"int16", 2},
	"CharStorage":          {"int8", 1},
	"ByteStorage":          {"uint8", 1},
	"BoolStorage":          {"bool", 1},
	"QInt8Storage":         {"qint8", 1},
	"QUInt8Storage":        {"quint8", 1},
	"QInt32Storage":        {"qint32", 4},
	"QUInt4x2Storage":      {"quint4x2", 1},
	"QUInt2x4Storage":      {"quint2x4", 1},
}

// untypedStorage is torch.UntypedStorage: plain bytes. torch.load reads it
// as uint8; a tensor on it names its own dtype (_rebuild_tensor_v3).
var untypedStorage = storageType{"uint8", 1}

// torchDTypes maps the names of torch's dtype objects (torch.float32 and its
// aliases such as torch.half), as they appear in pickles, to canonical names.
var torchDTypes = map[string]string{
	"float64": "float64", "double": "float64",
	"float32": "float32", "float": "float32",
	"float16": "float16", "half": "float16",
	"bfloat16":        "bfloat16",
	"float8_e4m3fn":   "float8_e4m3fn",
	"float8_e4m3fnuz": "float8_e4m3fnuz",
	"float8_e5m2":     "float8_e5m2",
	"float8_e5m2fnuz": "float8_e5m2fnuz",
	"complex128":      "complex128", "cdouble": "complex128",
	"complex64": "complex64", "cfloat": "complex64",
	"complex32": "complex32", "chalf": "complex32",
	"int64": "int64", "long": "int64",
	"int32": "int32", "int": "int32",
	"int16": "int16", "short": "int16",
	"int8":     "int8",
	"uint64":   "uint64",
	"uint32":   "uint32",
	"uint16":   "uint16",
	"uint8":    "uint8",
	"bool":     "bool",
	"qint8":    "qint8",
	"quint8":   "quint8",
	"qint32":   "qint32",
	"quint4x2": "quint4x2",
	"quint2x4": "quint2x4",
}

// qschemes are torch's quantization scheme objects (torch.per_tensor_affine,
// ...), the first element of a quantized tensor's parameters.
var qschemes = []string{
	"per_tensor_affine",
	"per_tensor_symmetric",
	"per_channel_affine",
	"per_channel_symmetric",
	"per_channel_affine_float_qparams",
}
