package pytorch

import (
	"sync"

	"github.com/qinsaudit/qinsaudit/accounting"
)

// storageType is what a torch storage class says about its bytes.
type storageType struct {
	dtype string // canonical dtype name (accounting.LookupDType)
	// elemBytes is torch's element_size for the class: a storage of numel
	// elements holds numel*elemBytes bytes. It is the block size of the
	// dtype in accounting's table: one element, or for the packed 4- and
	// 2-bit quantized types the byte that torch counts as an element.
	elemBytes int64
}

// storageOf is the storage type of a canonical dtype name, which must be
// in accounting's table.
func storageOf(dtype string) storageType {
	d, ok := accounting.LookupDType(dtype)
	if !ok {
		panic("pytorch: dtype " + dtype + " is not in accounting's table")
	}
	return storageType{dtype: dtype, elemBytes: d.BlockBytes}
}

// storageTypes maps the typed storage classes torch.save names in
// persistent ids (torch.FloatStorage, ...) to their element type; made on
// first use, by allowed.
var storageTypes = sync.OnceValue(func() map[string]storageType {
	return map[string]storageType{
		"DoubleStorage":        storageOf("float64"),
		"FloatStorage":         storageOf("float32"),
		"HalfStorage":          storageOf("float16"),
		"BFloat16Storage":      storageOf("bfloat16"),
		"ComplexDoubleStorage": storageOf("complex128"),
		"ComplexFloatStorage":  storageOf("complex64"),
		"LongStorage":          storageOf("int64"),
		"IntStorage":           storageOf("int32"),
		"ShortStorage":         storageOf("int16"),
		"CharStorage":          storageOf("int8"),
		"ByteStorage":          storageOf("uint8"),
		"BoolStorage":          storageOf("bool"),
		"QInt8Storage":         storageOf("qint8"),
		"QUInt8Storage":        storageOf("quint8"),
		"QInt32Storage":        storageOf("qint32"),
		"QUInt4x2Storage":      storageOf("quint4x2"),
		"QUInt2x4Storage":      storageOf("quint2x4"),
	}
})

// untypedStorage is torch.UntypedStorage: plain bytes. torch.load reads it
// as uint8; a tensor on it names its own dtype (_rebuild_tensor_v3).
var untypedStorage = storageOf("uint8")

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
