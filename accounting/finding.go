package accounting

import (
	"fmt"
	"iter"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// FindingKind names a kind of finding. Kinds are stable identifiers: CI
// budgets forbid them by name.
type FindingKind string

// The finding kinds.
const (
	// EncodedButUncompressed: an encoded module whose stored bits per
	// weight are not below the baseline's (the Phi-3.5 float32 case).
	EncodedButUncompressed FindingKind = "encoded-but-uncompressed"
	// SidecarOverhead: a side tensor stored wider than its information
	// needs (a sign kept as one int8 byte per weight).
	SidecarOverhead FindingKind = "sidecar-overhead"
	// DuplicateWeight: an encoded module still carries its float weight.
	DuplicateWeight FindingKind = "duplicate-weight"
	// DeadBytes: a storage larger than the views that use it.
	DeadBytes FindingKind = "dead-bytes"
	// SharedStorage: tensors sharing one storage; summing per-tensor sizes
	// counts it more than once.
	SharedStorage FindingKind = "shared-storage"
	// UnknownDType: a dtype qinsaudit has no size for.
	UnknownDType FindingKind = "unknown-dtype"
	// FileTypeMismatch: a file's quantization label (GGUF's
	// general.file_type) names a dtype none of its tensors has.
	FileTypeMismatch FindingKind = "file-type-mismatch"
	// RemovedGGMLType: a GGML type ggml has dropped; current llama.cpp
	// refuses the file.
	RemovedGGMLType FindingKind = "removed-ggml-type"
	// UnusedFileBytes: bytes of a file's data section that no tensor holds
	// and that alignment padding does not explain (bytes after the last
	// tensor of a safetensors file).
	UnusedFileBytes FindingKind = "unused-file-bytes"
	// ConfigMismatch: the quantization_config says one thing (bits: 3)
	// and the tensors' shapes another (4-bit packing).
	ConfigMismatch FindingKind = "config-mismatch"
	// UnknownEncoding: a linear-shaped integer tensor, or a PyTorch
	// quantized one, that no scheme matches, counted as a plain buffer.
	UnknownEncoding FindingKind = "unknown-encoding"
	// UnsafePickle: a checkpoint's pickle imports names outside
	// torch.load(weights_only=True)'s allow-list (File.Globals): an error
	// when one of them runs code (os.system, builtins.exec, ...), a
	// warning when they are classes (a pickled whole module).
	UnsafePickle FindingKind = "unsafe-pickle"
	// NoData: tensors whose file holds their dtype and shape but no
	// values (PyTorch meta tensors, Tensor.DataOffset NoDataOffset).
	NoData FindingKind = "no-data"
	// UnreadTensors: a pickle rebuilds tensors with a function the loader
	// does not read (File.UnreadTensors): they are not counted.
	UnreadTensors FindingKind = "unread-tensors"
	// PruningMask: a tensor pruned with torch.nn.utils.prune saved as its
	// dense X_orig and its X_mask (and, in a whole-module save, their
	// product X): pruning saved no bytes, and the mask adds a copy's worth.
	PruningMask FindingKind = "pruning-mask"
	// RepeatedElements: a view whose strides repeat elements (torch's
	// expand, a stride of 0): its numel x element size exceeds the storage
	// it spans, and its ratio counts the repetition as saving.
	RepeatedElements FindingKind = "repeated-elements"
	// DerivedCopy: a tensor that weight_norm or spectral_norm computes from
	// others, kept by a whole-module save beside them.
	DerivedCopy FindingKind = "derived-copy"
)

// FindingKinds lists every kind, for documentation and config validation.
var FindingKinds = []FindingKind{EncodedButUncompressed, SidecarOverhead, DuplicateWeight, DeadBytes, SharedStorage, UnknownDType,
	FileTypeMismatch, RemovedGGMLType, UnusedFileBytes, ConfigMismatch, UnknownEncoding, UnsafePickle, NotDecoded,
	HeapProfileTruncated, HeapProfileNoInUse, HeapProfileLate, HeapProfileNoBase, HeapOverBudget, NoData, UnreadTensors, PruningMask, RepeatedElements, DerivedCopy}

// Severity ranks findings.
type Severity string

// Severities, most severe first.
const (
	Error   Severity = "error"
	Warning Severity = "warning"
	Info    Severity = "info"
)

func (s Severity) rank() int {
	switch s {
	case Error:
		return 0
	case Warning:
		return 1
	}
	return 2
}

// Finding is something the accounting noticed.
type Finding struct {
	Kind     FindingKind
	Severity Severity
	Module   string   // the module concerned, "" if none
	Tensors  []string // the tensors concerned
	// Bytes is what is at stake: the bytes that could be saved, or that a
	// naive count gets wrong.
	Bytes   int64
	Message string
}

func findings(m *Model, res *Result) []Finding {
	var out []Finding
	ref, _ := LookupDType(res.Baseline)
	refBits := ref.BlockBytes * 8

	// Per encoded module: is it compressed at all? Which side tensors are
	// wider than they need to be?
	type mod struct {
		name, scheme string
		rows         int      // its encoded rows
		tensors      []string // their names, for a module found uncompressed
		stored       int64
		params       int64
		dtype        string
		bits         float64
		flagged      bool
	}
	// The modules in order of first appearance, and each one's index;
	// neighbouring rows mostly share their module, so only a change of
	// module is looked up, and the changes bound how many there are.
	runs := 0
	for i, prev := 0, ""; i < len(res.Rows); i++ {
		if r := &res.Rows[i]; r.Encoded && (runs == 0 || r.Module != prev) {
			runs, prev = runs+1, r.Module
		}
	}
	index := make(map[string]int, runs)
	mods := make([]mod, 0, runs)
	modOf := func(cur int, r *Row) int {
		if cur >= 0 && r.Module == mods[cur].name {
			return cur
		}
		k, ok := index[r.Module]
		if !ok {
			k = len(mods)
			index[r.Module] = k
			mods = append(mods, mod{name: r.Module, scheme: r.Scheme})
		}
		return k
	}
	cur := -1
	var sides []int // rows whose information needs NeedBits per weight
	for i := range res.Rows {
		r := &res.Rows[i]
		if !r.Encoded {
			continue
		}
		cur = modOf(cur, r)
		md := &mods[cur]
		md.rows++
		md.stored += r.StoredBytes
		md.params += r.Params
		if r.Part == PartWeight {
			md.dtype = r.DType
		}
		if r.NeedBits > 0 && r.StoredBytes > 0 {
			sides = append(sides, i)
		}
	}
	// A side holds NeedBits per element; but one of fewer elements than
	// its module has weights, wide enough for NeedBits per weight, may
	// already pack them (QINS signs eight to a byte: [out, in/8] uint8),
	// and is held to that: no saving is claimed that its layout may
	// already make.
	for _, i := range sides {
		r := &res.Rows[i]
		d, ok := LookupDType(r.DType)
		if !ok || d.Bits() <= float64(r.NeedBits) {
			continue
		}
		need := r.Numel * int64(r.NeedBits)
		weights := mods[index[r.Module]].params
		if w := weights * int64(r.NeedBits); r.Numel < weights && r.StoredBytes*8 >= w {
			need = w
		}
		packed := (need + 7) / 8
		if save := r.StoredBytes - packed; save > 0 {
			out = append(out, Finding{Kind: SidecarOverhead, Severity: Warning, Module: r.Module,
				Tensors: []string{r.Name}, Bytes: save,
				Message: fmt.Sprintf("%s stored as %s, %g bits per element where %d would do; bit-packing saves the bytes shown", r.Part, r.DType, d.Bits(), r.NeedBits)})
		}
	}
	flagged := false
	for k := range mods {
		md := &mods[k]
		if md.params == 0 {
			continue
		}
		md.bits = float64(md.stored) * 8 / float64(md.params)
		if md.bits >= float64(refBits) {
			md.flagged, flagged = true, true
			md.tensors = make([]string, 0, md.rows)
		}
	}
	if flagged {
		// A second pass names the tensors of the uncompressed modules only.
		cur = -1
		for i := range res.Rows {
			r := &res.Rows[i]
			if !r.Encoded {
				continue
			}
			cur = modOf(cur, r)
			if md := &mods[cur]; md.flagged {
				md.tensors = append(md.tensors, r.Name)
			}
		}
	}
	for k := range mods {
		if md := &mods[k]; md.flagged {
			out = append(out, Finding{Kind: EncodedButUncompressed, Severity: Error, Module: md.name,
				Tensors: md.tensors, Bytes: md.stored,
				Message: fmt.Sprintf("encoded as %s but stored as %s: %.0f bits per weight, no saving over %s", md.scheme, md.dtype, md.bits, res.Baseline)})
		}
	}
	if q := m.Quantization; q != nil && q.Method != "" {
		out = append(out, configFloatLayers(q, res)...)
	}
	out = append(out, labelFindings(m, res)...)
	out = append(out, gapFindings(m)...)
	out = append(out, pickleFindings(m)...)
	out = append(out, noDataFindings(m, res)...)
	out = append(out, unreadFindings(m)...)
	out = append(out, tensorFindings(m.Quantization, res)...)
	out = append(out, reparamFindings(res)...)
	for i := range res.Rows {
		r := &res.Rows[i]
		if r.Leftover {
			out = append(out, Finding{Kind: DuplicateWeight, Severity: Error, Module: r.Module,
				Tensors: []string{r.Name}, Bytes: r.StoredBytes,
				Message: fmt.Sprintf("%s is encoded as %s but still carries its %s weight", r.Module, mods[index[r.Module]].scheme, r.DType)})
		}
		if t := &m.Tensors[i]; t.Strides != nil && r.Numel > 0 {
			if span := viewSpan(t, r.TheoreticalBytes); span[1]-span[0] < r.TheoreticalBytes {
				out = append(out, Finding{Kind: RepeatedElements, Severity: Warning, Module: r.Module,
					Tensors: []string{r.Name}, Bytes: r.TheoreticalBytes - (span[1] - span[0]),
					Message: fmt.Sprintf("strides %s repeat elements (an expanded view): %d bytes of elements span %d bytes of storage, and the ratio counts the repetition as saving", dims(t.Strides), r.TheoreticalBytes, span[1]-span[0])})
			}
		}
		if r.DeadBytes > 0 {
			ts := append([]string{r.Name}, r.SharesStorageWith...)
			out = append(out, Finding{Kind: DeadBytes, Severity: Warning, Module: r.Module, Tensors: ts, Bytes: r.DeadBytes,
				Message: fmt.Sprintf("storage of %d bytes holds views covering %d; the rest is saved but unused (a slice saved with its parent?)", r.StoredBytes, r.StoredBytes-r.DeadBytes)})
		}
		if r.StoredBytes > 0 && len(r.SharesStorageWith) > 0 {
			ts := append([]string{r.Name}, r.SharesStorageWith...)
			out = append(out, Finding{Kind: SharedStorage, Severity: Info, Module: r.Module, Tensors: ts,
				Bytes:   r.StoredBytes * int64(len(r.SharesStorageWith)),
				Message: fmt.Sprintf("%d tensors share one storage; summing per-tensor sizes counts it %d times", len(ts), len(ts))})
		}
	}
	return out
}

// dims writes a shape or strides as [a,b,c].
func dims(ds []int64) string {
	b := []byte{'['}
	for i, d := range ds {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendInt(b, d, 10)
	}
	return string(append(b, ']'))
}

// reparamFindings names each tensor pruned with torch.nn.utils.prune
// that the file stores dense, with the bytes of its mask and, in a
// whole-module save, of its derived copy, which prune.remove before
// saving drops; and each other derived copy (weight_norm's,
// spectral_norm's weight, computed and kept by a whole-module save).
func reparamFindings(res *Result) []Finding {
	var out []Finding
	copies := map[string]int{} // derived copies by name, not yet named by a finding
	for i := range res.Rows {
		if res.Rows[i].Part == PartDerivedCopy {
			copies[res.Rows[i].Name] = i
		}
	}
	for i := range res.Rows {
		r := &res.Rows[i]
		if r.Part != PartMask {
			continue
		}
		x := strings.TrimSuffix(r.Name, "_mask")
		leaf := leafOf(x)
		ts, bytes, copied := []string{x + "_orig", r.Name}, r.StoredBytes, ""
		if j, ok := copies[x]; ok {
			ts, bytes = append(ts, x), bytes+res.Rows[j].StoredBytes
			copied = fmt.Sprintf(", and %s, their product, is saved too", leaf)
			delete(copies, x)
		}
		bits := "an unknown width"
		if d, ok := LookupDType(r.DType); ok {
			bits = fmt.Sprintf("%g bits", d.Bits())
		}
		out = append(out, Finding{Kind: PruningMask, Severity: Warning, Module: r.Module, Tensors: ts, Bytes: bytes,
			Message: fmt.Sprintf("%s is pruned (torch.nn.utils.prune) but stored dense: %s_orig keeps every element and %s_mask adds a %s mask, %s per element where 1 would do%s; prune.remove before saving saves the bytes shown", leaf, leaf, leaf, r.DType, bits, copied)})
	}
	for i := range res.Rows { // in row order, not the map's
		r := &res.Rows[i]
		if _, ok := copies[r.Name]; !ok {
			continue
		}
		out = append(out, Finding{Kind: DerivedCopy, Severity: Warning, Module: r.Module, Tensors: []string{r.Name}, Bytes: r.StoredBytes,
			Message: fmt.Sprintf("%s is computed from the tensors beside it (torch.nn.utils.weight_norm or spectral_norm) and saved as well: a whole pickled module keeps it, a state_dict does not", leafOf(r.Name))})
	}
	return out
}

func sortFindings(fs []Finding) {
	sort.SliceStable(fs, func(i, j int) bool {
		a, b := fs[i], fs[j]
		if a.Severity.rank() != b.Severity.rank() {
			return a.Severity.rank() < b.Severity.rank()
		}
		return strings.Compare(string(a.Kind), string(b.Kind)) < 0
	})
}

// configFloatLayers finds linear weights that the quantization config says
// are quantized but that the file holds in float: 2-D float weights inside
// layers, not embeddings, not listed as left unconverted.
func configFloatLayers(q *QuantConfig, res *Result) []Finding {
	var out []Finding
	var dt dtypeCache
	for i := range res.Rows {
		r := &res.Rows[i]
		if r.Role != Untouched || r.Part != PartWeight || len(r.Shape) != 2 || r.Layer == "" || !dt.isFloat(r.DType) || q.NotConverted(r.Module) {
			continue
		}
		bits := ""
		if q.Bits > 0 {
			bits = fmt.Sprintf(" (%d bits)", q.Bits)
		}
		out = append(out, Finding{Kind: EncodedButUncompressed, Severity: Error, Module: r.Module, Tensors: []string{r.Name}, Bytes: r.StoredBytes,
			Message: fmt.Sprintf("quantization_config says %s%s, but this layer is stored as %s and is not in modules_to_not_convert", q.Method, bits, r.DType)})
	}
	return out
}

// labelFindings checks each file's quantization label against the dtypes
// its tensors have, and flags GGML types ggml has removed. The rows are
// grouped by file in one pass: a loop over every row for every file made
// a directory of 40,000 shards take seconds in this function alone.
func labelFindings(m *Model, res *Result) []Finding {
	var out []Finding
	rowsOf := fileRows(res.Rows, len(m.Files))
	for i, f := range m.Files {
		// present[d] is the bytes of the file's dtype order[k] at
		// sums[k], k = present[d]; neighbouring rows mostly share their
		// dtype, so only a change of dtype is looked up.
		present := map[string]int{}
		var order []string
		var sums []int64
		k := -1
		for j := range rowsOf(i) {
			r := &res.Rows[j]
			if k < 0 || r.DType != order[k] {
				var ok bool
				if k, ok = present[r.DType]; !ok {
					k = len(order)
					present[r.DType] = k
					order = append(order, r.DType)
					sums = append(sums, 0)
				}
			}
			sums[k] += r.StoredBytes
		}
		bytesOf := func(d string) int64 {
			if k, ok := present[d]; ok {
				return sums[k]
			}
			return 0
		}
		if f.LabelDType != "" && len(order) > 0 && bytesOf(f.LabelDType) == 0 {
			mix := make([]string, len(order))
			for k, d := range order {
				mix[k] = fmt.Sprintf("%s %d bytes", d, sums[k])
			}
			out = append(out, Finding{Kind: FileTypeMismatch, Severity: Warning, Module: "", Tensors: []string{}, Bytes: 0,
				Message: fmt.Sprintf("%s says %s (mostly %s), but no tensor is %s; present: %s", f.Path, f.Label, f.LabelDType, f.LabelDType, strings.Join(mix, ", "))})
		}
		for k, d := range order {
			if GGMLRemoved(d) {
				var ts []string
				for j := range rowsOf(i) {
					if r := &res.Rows[j]; r.DType == d {
						ts = append(ts, r.Name)
					}
				}
				out = append(out, Finding{Kind: RemovedGGMLType, Severity: Warning, Tensors: ts, Bytes: sums[k],
					Message: fmt.Sprintf("%s: %d tensors of %s, a type ggml has removed: current llama.cpp refuses this file", f.Path, len(ts), d)})
			}
		}
	}
	return out
}

// fileRows returns the indices of each of n files' rows, in order. Loaders
// list a model's tensors file by file, so each file's rows are one run
// and are walked as it; rows in any other order are indexed by file
// first, in one backing array (a pass over every row for every file made
// a directory of 40,000 shards take seconds). Rows of no file (File out
// of range) belong to none.
func fileRows(rows []Row, n int) func(file int) iter.Seq[int] {
	// The span of each file's rows, if they are runs.
	lo, hi := make([]int, n), make([]int, n)
	runs, last := true, -1
	for j := range rows {
		f := rows[j].File
		if f < 0 || f >= n {
			continue
		}
		if f != last {
			if hi[f] > 0 { // f's rows are in two runs
				runs = false
				break
			}
			lo[f], last = j, f
		}
		hi[f] = j + 1
	}
	if runs {
		return func(file int) iter.Seq[int] {
			return func(yield func(int) bool) {
				for j := lo[file]; j < hi[file]; j++ {
					if rows[j].File == file && !yield(j) {
						return
					}
				}
			}
		}
	}
	counts := make([]int, n)
	for j := range rows {
		if f := rows[j].File; f >= 0 && f < n {
			counts[f]++
		}
	}
	byFile := make([][]int, n)
	all := make([]int, 0, len(rows))
	for i, c := range counts {
		if c > 0 {
			byFile[i], all = all[len(all):len(all):len(all)+c], all[:len(all)+c]
		}
	}
	for j := range rows {
		if f := rows[j].File; f >= 0 && f < n {
			byFile[f] = append(byFile[f], j)
		}
	}
	return func(file int) iter.Seq[int] { return slices.Values(byFile[file]) }
}

// gapFindings reports, per file, the bytes of its data section that no
// tensor holds (File.Gaps): one finding per file, its bytes their sum.
func gapFindings(m *Model) []Finding {
	var out []Finding
	for _, f := range m.Files {
		if len(f.Gaps) == 0 {
			continue
		}
		var total int64
		ts := []string{}
		for _, g := range f.Gaps {
			total += g.Bytes
			if g.After != "" {
				ts = append(ts, g.After)
			}
		}
		g := f.Gaps[0]
		where := fmt.Sprintf("%d bytes at offset %d", g.Bytes, g.Offset)
		switch {
		case g.Record != "":
			where = fmt.Sprintf("record %q, %d bytes at offset %d, a storage no tensor uses", g.Record, g.Bytes, g.Offset)
		case g.After == "":
			where += ", before the first tensor"
		case g.Offset+g.Bytes == f.SizeBytes:
			where += fmt.Sprintf(", after the last tensor, %q", g.After)
		default:
			where += fmt.Sprintf(", after tensor %q", g.After)
		}
		msg := fmt.Sprintf("%s: %s, are held by no tensor", f.Path, where)
		if len(f.Gaps) > 1 {
			msg = fmt.Sprintf("%s: %d bytes in %d runs are held by no tensor (the first: %s)", f.Path, total, len(f.Gaps), where)
		}
		switch f.Format {
		case "gguf":
			msg += "; alignment padding is not counted here"
		case "safetensors":
			msg += "; the safetensors reference reader refuses such a file"
		}
		out = append(out, Finding{Kind: UnusedFileBytes, Severity: Warning, Tensors: ts, Bytes: total, Message: msg})
	}
	return out
}

// noDataFindings reports, per file, the tensors the file holds no data
// for (meta tensors): they are counted, with their params, but stored in
// 0 bytes, so the file's stored bytes are not the model's size. The bytes
// at stake are what their values would take.
func noDataFindings(m *Model, res *Result) []Finding {
	var out []Finding
	at := map[int]int{} // file -> its finding in out
	for i := range m.Tensors {
		t := &m.Tensors[i]
		if t.DataOffset != NoDataOffset {
			continue
		}
		k, ok := at[t.File]
		if !ok {
			k = len(out)
			at[t.File] = k
			out = append(out, Finding{Kind: NoData, Severity: Warning, Tensors: []string{}})
		}
		out[k].Tensors = append(out[k].Tensors, t.Name)
		out[k].Bytes += res.Rows[i].TheoreticalBytes
	}
	for f, k := range at {
		path := ""
		if f >= 0 && f < len(m.Files) {
			path = m.Files[f].Path
		}
		n, are := len(out[k].Tensors), "tensors are"
		if n == 1 {
			are = "tensor is"
		}
		out[k].Message = fmt.Sprintf("%s: %d %s on the meta device: the file holds dtype and shape, no values (stored bytes 0), and loading the file gives tensors without data (a model saved before its weights were loaded?); the bytes shown are what the values would take. A weight under two names (a tied head) is counted once where the file shares it, which a state_dict of meta tensors does not",
			path, n, are)
	}
	return out
}

// unreadFindings reports, per file, the tensor rebuild functions its
// pickle calls that the loader does not read (File.UnreadTensors): the
// tensors they build are missing from every count, so the file's figures
// are short by them, and nothing says by how much.
func unreadFindings(m *Model) []Finding {
	var out []Finding
	for _, f := range m.Files {
		if len(f.UnreadTensors) == 0 {
			continue
		}
		out = append(out, Finding{Kind: UnreadTensors, Severity: Warning, Tensors: []string{}, Message: fmt.Sprintf(
			"%s: the pickle builds values with %s, which qinsaudit does not read as tensors: the tensors they make are not counted (their bytes, maybe inside the pickle, are overhead), so the counts and sizes leave them out",
			f.Path, globalList(f.UnreadTensors))})
	}
	return out
}

// pickleFindings reports, per file, the names its pickles import that
// torch.load(weights_only=True) would refuse (File.Globals): one finding
// per file, an error when any of them runs code.
func pickleFindings(m *Model) []Finding {
	var out []Finding
	for _, f := range m.Files {
		if len(f.Globals) == 0 {
			continue
		}
		var code, classes []Global
		for _, g := range f.Globals {
			if g.RunsCode {
				code = append(code, g)
			} else {
				classes = append(classes, g)
			}
		}
		if len(code) > 0 {
			msg := fmt.Sprintf("%s: a full torch.load (without weights_only=True) runs code: the pickle imports %s", f.Path, globalList(code))
			if len(classes) > 0 {
				msg += fmt.Sprintf(", and %d more names outside the weights_only allow-list", len(classes))
			}
			out = append(out, Finding{Kind: UnsafePickle, Severity: Error, Tensors: []string{}, Message: msg + ". qinsaudit ran nothing"})
			continue
		}
		out = append(out, Finding{Kind: UnsafePickle, Severity: Warning, Tensors: []string{}, Message: fmt.Sprintf(
			"%s: the pickle imports %d names outside torch.load(weights_only=True)'s allow-list, which refuses the file: %s; a full torch.load imports their modules. qinsaudit ran nothing",
			f.Path, len(classes), globalList(classes))})
	}
	return out
}

// globalList names up to 4 globals with their offsets.
func globalList(gs []Global) string {
	const shown = 4
	var parts []string
	for i, g := range gs {
		if i == shown {
			parts = append(parts, fmt.Sprintf("and %d more", len(gs)-shown))
			break
		}
		p := g.Module + "." + g.Name
		if g.Offset >= 0 {
			p += fmt.Sprintf(" (at offset %d)", g.Offset)
		}
		parts = append(parts, p)
	}
	return strings.Join(parts, ", ")
}

// tensorFindings reports a quantization_config that the tensors of an
// encoded module contradict, and linear-shaped integer tensors that no
// scheme matches.
func tensorFindings(q *QuantConfig, res *Result) []Finding {
	var out []Finding
	for i := range res.Rows {
		r := &res.Rows[i]
		if r.Encoded && r.Part == PartWeight && r.Bits > 0 && q != nil && q.Bits > 0 && r.Bits != q.Bits {
			out = append(out, Finding{Kind: ConfigMismatch, Severity: Warning, Module: r.Module, Tensors: []string{r.Name}, Bytes: r.StoredBytes,
				Message: fmt.Sprintf("quantization_config says bits %d, but the %s tensors' shapes pack %d bits per weight: counted as %d-bit (%d weights)",
					q.Bits, r.Scheme, r.Bits, r.Bits, r.Params)})
		}
		if !r.Encoded && r.Role == Untouched && r.Part == PartBuffer && weightShaped(r) {
			out = append(out, Finding{Kind: UnknownEncoding, Severity: Warning, Module: r.Module, Tensors: []string{r.Name}, Bytes: r.StoredBytes,
				Message: fmt.Sprintf("a %d-D %s tensor that no encoding scheme matches: counted as a plain buffer at its own size (1.00x); if it holds encoded weights, describe the scheme with --rules", len(r.Shape), r.DType)})
		}
	}
	return out
}

// weightShaped reports whether a tensor looks like encoded weights: a
// matrix of an integer dtype quantizers pack weights into (an int64 or
// bool matrix is an index or a mask; a row vector is not a linear), or a
// PyTorch quantized tensor of rank 2 or more (a conv weight is 4-D).
func weightShaped(r *Row) bool {
	if len(r.Shape) < 2 || r.Numel == 0 {
		return false
	}
	return slices.Contains(torchQuantized, r.DType) || len(r.Shape) == 2 && !slices.Contains(r.Shape, 1) && packedInts[r.DType]
}

var packedInts = map[string]bool{"int8": true, "uint8": true, "int16": true, "uint16": true, "int32": true, "uint32": true}
