package accounting

// Model is what the loaders found in one or more model files: the files
// themselves and every tensor they hold, in file order. A loader fills it from
// headers only; no tensor data is read.
type Model struct {
	Files   []File
	Tensors []Tensor
	// Quantization is the "quantization_config" of a config.json found beside
	// the model files, if any.
	Quantization *QuantConfig
	// Skipped are model files found but not read (a pytorch_model.bin
	// beside the model.safetensors that transformers loads), and why.
	Skipped []SkippedFile
}

// SkippedFile is a model file a directory held that was not read.
type SkippedFile struct {
	Path      string
	SizeBytes int64
	Reason    string
}

// File is one model file as a loader saw it.
type File struct {
	Path   string // as given on the command line or found in a directory
	Format string // "pytorch-zip", "pytorch-legacy", "safetensors", "gguf"
	// SizeBytes is the size of the file on disk.
	SizeBytes int64
	// Label is the quantization the file says it holds (GGUF's
	// general.file_type: "MOSTLY_Q4_K_M"), "" if it says none; LabelDType
	// is the dtype that label says most weights have ("q4_k").
	Label      string
	LabelDType string
	// Gaps are the runs of the file's tensor data section that no tensor
	// holds and that the format does not explain (alignment padding is
	// not a gap): bytes between tensors or after the last one. They are
	// part of the file's overhead.
	Gaps []Gap
	// Split is set when the file is one part of a model split into
	// several files (GGUF's split.no and split.count).
	Split *Split
	// Globals are the classes and functions a pickle of the file imports
	// that torch.load(weights_only=True) refuses, each once, in pickle
	// order: a full torch.load imports and calls them (see the
	// unsafe-pickle finding). Nothing here was run.
	Globals []Global
	// UnreadTensors are the tensor rebuild functions a pickle of the file
	// calls that the loader does not read (torch's
	// _rebuild_device_tensor_from_numpy, _rebuild_nested_tensor, ...),
	// each once, in pickle order: the tensors they make are not in the
	// model's Tensors, and their bytes are the file's overhead.
	UnreadTensors []Global
}

// Global is a name a pickle imports: Module.Name, first at file offset
// Offset (-1 when the pickle is compressed). RunsCode is set when calling
// it can run code or reach the system (os.system, builtins.exec, ...)
// rather than build an object of a class.
type Global struct {
	Module, Name string
	Offset       int64
	RunsCode     bool
}

// Gap is a run of bytes in a file's data section that no tensor holds.
type Gap struct {
	Offset int64  // file offset of its first byte
	Bytes  int64  // its length
	After  string // the tensor whose data precedes it, "" at the start of the data section
	// Record, in a zip archive (a PyTorch checkpoint), is the record that
	// holds the bytes: a storage no tensor of the archive uses.
	Record string
}

// Split is what one part of a split model says of the set.
type Split struct {
	No      int64 // this part, counting from 0
	Count   int64 // parts in the set
	Tensors int64 // tensors in all parts, -1 if the file does not say
}

// QuantConfig is the subset of a Hugging Face quantization_config that the
// classifier uses.
type QuantConfig struct {
	Method              string   // quant_method: "gptq", "awq", "bitsandbytes", "fp8", ...
	Bits                int      // bits per weight, 0 if not given
	GroupSize           int      // group size, 0 if not given
	ModulesNotToConvert []string // modules_to_not_convert
}

// NoDataOffset is the DataOffset of a tensor whose file gives its dtype and
// shape but no data: a PyTorch tensor on the meta device (a model saved
// before its weights were loaded). It has no storage of data: its stored
// and dead bytes are 0, and its Storage names a storage of no bytes that
// only tensors of no data share (one tensor under two names, a tied head,
// is still one weight).
const NoDataOffset = -2

// Tensor is one tensor as it is stored in a file.
//
// Bytes are attributed through storages: a storage is a run of bytes in a
// file, and a tensor is a view into one. Several tensors may view the same
// storage (tied weights), and a view may cover only part of it (a slice saved
// with its parent's storage).
type Tensor struct {
	// Name is the dotted path a state_dict would use, e.g.
	// "blocks.0.attn.q.weight". Tensors nested in containers are named by
	// their path through the container ("optimizer.state.0.exp_avg").
	Name string
	// File indexes Model.Files.
	File int
	// DType is a canonical dtype name from the dtype table (see LookupDType).
	DType string
	// Shape is the logical shape; a scalar has an empty shape.
	Shape []int64
	// Strides are in elements; nil means C-contiguous.
	Strides []int64

	// Storage identifies the storage within its file ("data/3", a
	// safetensors tensor name, ...). Tensors of one file with equal Storage
	// share bytes.
	Storage string
	// StorageBytes is the number of bytes the storage occupies in the file.
	StorageBytes int64
	// ViewOffset is the byte offset of the tensor's first element within
	// its storage.
	ViewOffset int64
	// DataOffset is the absolute file offset of the storage's first byte,
	// -1 when the format does not place it at a fixed offset, or
	// NoDataOffset when the file holds no data for the tensor at all.
	DataOffset int64

	// QScale and QZeroPoint are the per-tensor quantization parameters of a
	// PyTorch quantized tensor (qint8, quint8); zero otherwise.
	QScale     float64
	QZeroPoint int64

	// Owners are the classes of the objects that hold the tensor,
	// outermost first, where the file names them (TorchScript archives and
	// whole pickled modules: "torch.nn.quantized.dynamic.modules.linear.Linear");
	// nil when it does not (a state_dict).
	Owners []string
}
