package accounting

import (
	"fmt"
	"slices"
	"sort"
)

// Options control an audit.
type Options struct {
	// Baseline is the dtype a plain, uncompressed weight would use:
	// "float32" (the default when empty), "float16" or "bfloat16".
	Baseline string
	// Schemes are a user's encoding schemes, tried before the built-in
	// ones (qinsaudit audit --rules).
	Schemes []Scheme
	// Summary leaves the module groups (Result.Modules) out, for a caller
	// that shows no sums by module or tensor (report.Report.Summary): a
	// model of weights has a module a tensor or two, and summing them was
	// a tenth of a 100,000-tensor audit (issue 11). Every other figure is
	// the same.
	Summary bool
}

// Row is the accounting of one tensor.
type Row struct {
	Name  string
	File  int // index into Result.Files
	DType string
	Shape []int64
	Numel int64
	// ElementSize is bytes per element (fractional for block types).
	ElementSize float64
	Class
	Layer string
	// TheoreticalBytes is numel x element size, whole blocks.
	TheoreticalBytes int64
	// StoredBytes is what the file holds for the tensor: its storage's
	// bytes, charged to the first tensor that uses the storage; 0 for the
	// others.
	StoredBytes int64
	// BaselineBytes is the size of the logical weight the tensor represents
	// in the baseline dtype: params x 4 for an fp32 baseline on an encoded
	// main tensor or a plain float tensor; 0 for side tensors, a tied
	// tensor and a leftover duplicate; the stored size for non-float
	// buffers, which have no float reference.
	BaselineBytes int64
	// DeadBytes is the part of the storage no tensor views, on the tensor
	// charged with it.
	DeadBytes int64
	// SharesStorageWith names, for the tensor charged with a shared
	// storage, every other tensor on it; for those others, that tensor.
	SharesStorageWith []string
	// Tied marks the very same view as an earlier tensor (a tied lm_head):
	// one weight under two names. Group sums count it once.
	Tied bool
}

// Group sums rows by a key: a role, a module, a layer, or the total. A tied
// tensor (the same view as an earlier one) adds to Tensors but not to the
// byte and parameter sums.
type Group struct {
	Key              string
	Tensors          int64
	Params           int64
	BaselineBytes    int64
	TheoreticalBytes int64
	StoredBytes      int64
}

// Ratio is baseline over stored bytes: 2.0 means half the size of the
// baseline. It is 0 when nothing is stored.
func (g Group) Ratio() float64 {
	if g.StoredBytes == 0 {
		return 0
	}
	return float64(g.BaselineBytes) / float64(g.StoredBytes)
}

// BitsPerWeight is stored bits per logical parameter, 0 without params.
func (g Group) BitsPerWeight() float64 {
	if g.Params == 0 {
		return 0
	}
	return float64(g.StoredBytes) * 8 / float64(g.Params)
}

func (g *Group) add(r *Row) {
	g.Tensors++
	g.Params += r.Params
	g.BaselineBytes += r.BaselineBytes
	if !r.Tied {
		g.TheoreticalBytes += r.TheoreticalBytes
	}
	g.StoredBytes += r.StoredBytes
}

// FileResult is the accounting of one file.
type FileResult struct {
	File
	Tensors     int64
	StoredBytes int64
	// OverheadBytes is what the file holds besides tensor storages:
	// headers, pickles, zip records, padding.
	OverheadBytes int64
}

// Result is an audit: every figure a report shows, as integers, and the
// findings that explain them.
type Result struct {
	Baseline string // the baseline dtype
	Files    []FileResult
	Rows     []Row
	// Roles has one group per role that occurs, in Role order.
	Roles []Group
	// Modules are in order of first appearance; none in a summary.
	Modules []Group
	// Layers are in order of first appearance; the group with the empty key
	// holds the tensors outside any layer (embeddings, heads, final norms),
	// so the layers add up to the total.
	Layers []Group
	DTypes []Group // per dtype, most stored bytes first
	// Total sums every role that is part of the model (not optimizer
	// state).
	Total    Group
	Findings []Finding
	// Skipped are the model files found but not read, and why.
	Skipped []SkippedFile
	// Summary is set when Options.Summary left Modules out.
	Summary bool
}

// Audit accounts for every tensor of m.
func Audit(m *Model, opts Options) (*Result, error) {
	if opts.Baseline == "" {
		opts.Baseline = "float32"
	}
	ref, ok := LookupDType(opts.Baseline)
	if !ok || !ref.Float || ref.BlockElems != 1 {
		return nil, fmt.Errorf("baseline %q is not a float dtype", opts.Baseline)
	}
	res := &Result{Baseline: opts.Baseline, Skipped: m.Skipped, Summary: opts.Summary}
	res.Rows = make([]Row, len(m.Tensors))
	adviseHuge(res.Rows)
	classify(m, opts.Schemes, func(i int) *Class { return &res.Rows[i].Class })
	var dt dtypeCache
	for i := range m.Tensors {
		t := &m.Tensors[i]
		r := &res.Rows[i]
		r.Name, r.File, r.DType, r.Shape = t.Name, t.File, t.DType, t.Shape
		r.Layer = LayerOf(t.Name)
		n, err := Numel(t.Shape)
		if err != nil {
			return nil, fmt.Errorf("tensor %q: %w", t.Name, err)
		}
		r.Numel = n
		if d, ok := dt.lookup(t.DType); ok {
			r.ElementSize = float64(d.BlockBytes) / float64(d.BlockElems)
			r.TheoreticalBytes, err = d.Bytes(n) // n is the shape's product: no second Numel
			if d.RowPacked {
				r.TheoreticalBytes, err = d.ShapeBytes(t.Shape)
			}
			if err != nil {
				return nil, fmt.Errorf("tensor %q: %w", t.Name, err)
			}
		} else {
			// An unknown type: trust the file's span, and say so.
			r.TheoreticalBytes = t.StorageBytes
			res.Findings = append(res.Findings, Finding{Kind: UnknownDType, Severity: Warning,
				Module: r.Module, Tensors: []string{t.Name}, Bytes: t.StorageBytes,
				Message: fmt.Sprintf("dtype %q is not in qinsaudit's table; its file span is taken as its size", t.DType)})
		}
	}
	chargeStorages(m, res)
	for i := range res.Rows {
		r := &res.Rows[i]
		switch {
		case r.Leftover, r.Encoded && r.Part != PartWeight:
			r.BaselineBytes = 0
		case r.Encoded || dt.isFloat(r.DType) || r.DType == "":
			r.BaselineBytes = r.Params * ref.BlockBytes
			if d, _ := dt.lookup(r.DType); d.Complex && !r.Encoded {
				r.BaselineBytes *= 2 // a complex element is two floats
			}
		default:
			r.BaselineBytes = r.TheoreticalBytes
		}
	}
	untieBaselines(m, res)
	res.Files = fileResults(m, res)
	group(res)
	res.Findings = append(res.Findings, findings(m, res)...)
	sortFindings(res.Findings)
	return res, nil
}

// chargeStorages charges each storage once, to the first tensor that views
// it, and finds the bytes no view covers.
func chargeStorages(m *Model, res *Result) {
	if storagesDistinct(m) {
		// Each tensor is its storage's only view (safetensors, GGUF, a
		// state_dict without tied weights): no map of storages to build.
		for i := range m.Tensors {
			t, r := &m.Tensors[i], &res.Rows[i]
			r.StoredBytes = t.StorageBytes
			s := viewSpan(t, r.TheoreticalBytes)
			// covered of the one span, without a slice to sort
			if dead := t.StorageBytes - max(min(s[1], t.StorageBytes)-max(s[0], 0), 0); dead > 0 {
				r.DeadBytes = dead
			}
		}
		return
	}
	// The tensors of each storage are chained through next, in tensor
	// order, from the first (a list, not a slice per storage: most
	// storages have one tensor, and a model may have a million).
	// firstOf holds a map per file, each keyed by the storage alone:
	// tensors come in file order, so the file's map is looked up once
	// per run of its tensors, not once per tensor.
	perFile := map[int]int{} // tensors per file, to size its map
	for i := range m.Tensors {
		perFile[m.Tensors[i].File]++
	}
	firstOf := make(map[int]map[string]int, len(perFile))
	next := make([]int, len(m.Tensors))
	last := make([]int, len(m.Tensors)) // of a first tensor: the last of its chain
	order := make([]int, 0, len(m.Tensors))
	var cur map[string]int
	curFile := 0
	// Tensors of no data (meta tensors) have no bytes to share, but one
	// reached under two names (a tied head on the meta device) is still
	// one weight: they are chained by their own storage names, apart from
	// the storages of data, whose names they could take.
	type noDataKey struct {
		file    int
		storage string
	}
	var noData map[noDataKey]int
	for i := range m.Tensors {
		t := &m.Tensors[i]
		next[i] = -1
		if t.DataOffset == NoDataOffset {
			if noData == nil {
				noData = map[noDataKey]int{}
			}
			k := noDataKey{t.File, t.Storage}
			f, ok := noData[k]
			if !ok {
				noData[k], last[i] = i, i
				order = append(order, i)
				continue
			}
			next[last[f]], last[f] = i, i
			continue
		}
		if cur == nil || t.File != curFile {
			curFile = t.File
			if cur = firstOf[curFile]; cur == nil {
				cur = make(map[string]int, perFile[curFile])
				firstOf[curFile] = cur
			}
		}
		f, ok := cur[t.Storage]
		if !ok {
			cur[t.Storage], last[i] = i, i
			order = append(order, i)
			continue
		}
		next[last[f]], last[f] = i, i
	}
	var spans [][2]int64
	for _, f := range order {
		first := &res.Rows[f]
		size := m.Tensors[f].StorageBytes
		first.StoredBytes = size
		spans = spans[:0]
		for i := f; i >= 0; i = next[i] {
			spans = append(spans, viewSpan(&m.Tensors[i], res.Rows[i].TheoreticalBytes))
			if i != f {
				// Linear, not quadratic, in the views of one storage (a
				// flattened-parameter checkpoint has thousands): the tensor
				// charged with it names the others, they name it.
				first.SharesStorageWith = append(first.SharesStorageWith, m.Tensors[i].Name)
				res.Rows[i].SharesStorageWith = []string{m.Tensors[f].Name}
			}
		}
		if dead := size - covered(spans, size); dead > 0 {
			first.DeadBytes = dead
		}
	}
}

// storagesDistinct reports whether no two tensors of m share a storage,
// from their data offsets alone: a storage's tensors have its DataOffset,
// so tensors of distinct offsets within a file belong to as many storages.
// It is the common case, and deciding it without the map of storage names
// that chargeStorages builds otherwise was 3% of a 100,000-tensor audit.
// Offsets that rise strictly through each file's tensors (files in order,
// each once) decide it in one pass. Otherwise they are sorted: torch.save
// writes a checkpoint's storages in the order of their keys as strings
// ("0", "1", "10", "100", ...), not in the state_dict's, and sorting
// 100,000 offsets costs a fifth of what the map did.
func storagesDistinct(m *Model) bool {
	rising := true
	for i := range m.Tensors {
		t := &m.Tensors[i]
		if t.DataOffset < 0 {
			return false
		}
		if i > 0 {
			p := &m.Tensors[i-1]
			rising = rising && (t.File > p.File || t.File == p.File && t.DataOffset > p.DataOffset)
		}
	}
	if rising {
		return true
	}
	// A key is the file in the top 16 bits and the offset below.
	const fileShift = 48
	keys := make([]uint64, len(m.Tensors))
	for i := range m.Tensors {
		t := &m.Tensors[i]
		if t.File < 0 || t.File >= 1<<(64-fileShift) || t.DataOffset >= 1<<fileShift {
			return false // the map decides
		}
		keys[i] = uint64(t.File)<<fileShift | uint64(t.DataOffset)
	}
	slices.Sort(keys)
	for i := 1; i < len(keys); i++ {
		if keys[i] == keys[i-1] {
			return false
		}
	}
	return true
}

// viewSpan returns the byte range of its storage a tensor can touch.
func viewSpan(t *Tensor, theoretical int64) [2]int64 {
	start := t.ViewOffset
	if t.Strides == nil || len(t.Strides) != len(t.Shape) {
		return [2]int64{start, start + theoretical}
	}
	d, ok := LookupDType(t.DType)
	if !ok || d.BlockElems != 1 {
		return [2]int64{start, start + theoretical}
	}
	extent := int64(1)
	for k, s := range t.Shape {
		if s == 0 {
			return [2]int64{start, start}
		}
		extent += (s - 1) * t.Strides[k]
	}
	return [2]int64{start, start + extent*d.BlockBytes}
}

// covered returns how many bytes of [0, size) the spans cover.
func covered(spans [][2]int64, size int64) int64 {
	if len(spans) > 1 {
		sort.Slice(spans, func(a, b int) bool { return spans[a][0] < spans[b][0] })
	}
	var total, end int64
	for _, s := range spans {
		lo, hi := max(s[0], end, 0), min(s[1], size)
		if hi > lo {
			total += hi - lo
			end = hi
		}
	}
	return total
}

// untieBaselines zeroes the baseline of a tensor that is the very same view
// as an earlier one (a tied lm_head): it is one weight, not two.
func untieBaselines(m *Model, res *Result) {
	type view struct {
		file          int
		storage       string
		offset, bytes int64
		dtype         string
	}
	seen := map[view]bool{}
	for i := range m.Tensors {
		if len(res.Rows[i].SharesStorageWith) == 0 {
			continue // its storage has no other view, so no view like it
		}
		t := &m.Tensors[i]
		v := view{t.File, t.Storage, t.ViewOffset, res.Rows[i].TheoreticalBytes, t.DType}
		if seen[v] {
			res.Rows[i].Tied = true
			res.Rows[i].BaselineBytes = 0
			res.Rows[i].Params = 0
			continue
		}
		seen[v] = true
	}
}

func fileResults(m *Model, res *Result) []FileResult {
	out := make([]FileResult, len(m.Files))
	for i, f := range m.Files {
		out[i].File = f
	}
	for i := range res.Rows {
		r := &res.Rows[i]
		if r.File >= 0 && r.File < len(out) {
			out[r.File].Tensors++
			out[r.File].StoredBytes += r.StoredBytes
		}
	}
	for i := range out {
		out[i].OverheadBytes = out[i].SizeBytes - out[i].StoredBytes
	}
	return out
}

func group(res *Result) {
	var roles [numRoles]Group
	var seenRole [numRoles]bool
	// Neighbouring rows mostly share their module, layer and dtype: each
	// grouper remembers its last key, and looks a key up when it changes.
	// How often the module changes bounds the modules (one a tensor in
	// a model of only weights), so their groups are allocated once.
	var mods, layers, dtypes grouper
	mods.gs, layers.gs, dtypes.gs = &res.Modules, &res.Layers, &res.DTypes
	var modRuns int
	var lastMod string
	for i := range res.Rows {
		r := &res.Rows[i]
		if !res.Summary && r.Role.InModel() && (modRuns == 0 || r.Module != lastMod) {
			modRuns, lastMod = modRuns+1, r.Module
		}
	}
	if modRuns > 0 {
		res.Modules = make([]Group, 0, modRuns)
		adviseHuge(res.Modules)
		mods.idx.Grow(modRuns)
	}
	for i := range res.Rows {
		r := &res.Rows[i]
		roles[r.Role].add(r)
		seenRole[r.Role] = true
		if !r.Role.InModel() {
			continue
		}
		res.Total.add(r)
		if !res.Summary {
			mods.add(r.Module, r)
		}
		dtypes.add(r.DType, r)
		layers.add(r.Layer, r) // "" holds what is in no layer
	}
	res.Total.Key = "total"
	sort.SliceStable(res.DTypes, func(i, j int) bool { return res.DTypes[i].StoredBytes > res.DTypes[j].StoredBytes })
	for k := Role(0); k < numRoles; k++ {
		if seenRole[k] {
			roles[k].Key = k.String()
			res.Roles = append(res.Roles, roles[k])
		}
	}
}

// grouper adds rows to the group of their key, in order of first
// appearance.
type grouper struct {
	gs    *[]Group
	idx   KeyIndex // the groups' keys: idx numbers them as gs does
	last  string   // the last row's key, once set
	lastI int      // the index of its group
	set   bool
}

func (g *grouper) add(key string, r *Row) {
	if !g.set || key != g.last {
		i, ok := g.idx.Index(key)
		if !ok {
			i = g.idx.Add(key)
			*g.gs = append(*g.gs, Group{Key: key})
		}
		g.last, g.lastI, g.set = key, i, true
	}
	(*g.gs)[g.lastI].add(r)
}
