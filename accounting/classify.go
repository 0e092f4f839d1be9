package accounting

import (
	"slices"
	"strings"
)

// Class is what classification says of one tensor.
type Class struct {
	Role   Role
	Part   Part   // "weight", "bias", "sign", "scale", "norm", ...
	Module string // dotted prefix, e.g. "blocks.0.attn.q"
	Scheme string // encoding scheme, "" for plain tensors
	// Params is the number of logical weights the tensor holds: the
	// unpacked count for an encoded main tensor, 0 for its side tensors.
	Params int64
	// NeedBits is copied from the matched PartRule.
	NeedBits int
	// Leftover marks a float weight kept beside its encoded form.
	Leftover bool
	// Encoded marks a tensor of an encoded or quantized module (main or
	// side), whatever its role: a quantized embedding is encoded too.
	Encoded bool
	// Bits, on the main tensor of a packed scheme, is the bits per weight
	// the tensors' shapes imply (see tensorBits); 0 when they do not tell.
	// Params follow it, whatever the quantization_config says.
	Bits int
}

// Classify assigns every tensor of m a role, part, module and scheme.
// It is a pure function of the tensors' names, dtypes and shapes, and of
// the model's quantization config. The extra schemes (a user's rules) are
// tried before the built-in ones.
func Classify(m *Model, extra ...Scheme) []Class {
	cls := make([]Class, len(m.Tensors))
	classify(m, extra, func(i int) *Class { return &cls[i] })
	return cls
}

// classify is Classify, writing the class of tensor i to *at(i): Audit
// classifies into its rows, without a []Class of its own.
func classify(m *Model, extra []Scheme, at func(i int) *Class) {
	all := append(append([]Scheme(nil), extra...), schemes...)
	// byName (each name's first tensor) is built when a main tensor first
	// looks for its sides: a model of plain tensors never needs it.
	var byName map[string]int
	done := make([]bool, len(m.Tensors))
	encoded := map[string]string{} // module -> scheme

	// A top-level training-state key leaves the model out only when
	// something else holds it: a file of nothing but an EMA copy is the
	// model.
	withModel := false
	for i := range m.Tensors {
		t := &m.Tensors[i]
		if !isOptimizer(t.Name) && !heldByOptimizer(t.Owners) && !isCheckpointState(t.Name) {
			withModel = true
			break
		}
	}
	for i := range m.Tensors {
		t := &m.Tensors[i]
		if isOptimizer(t.Name) || heldByOptimizer(t.Owners) || withModel && isCheckpointState(t.Name) {
			*at(i) = Class{Role: OptimizerState, Part: PartState, Module: moduleOf(t.Name), Params: numel(t)}
			done[i] = true
		}
	}
	// Encoded modules: a main tensor and its sides. Which schemes a
	// tensor's dtype and the config admit is worked out once per dtype.
	cands := schemeCandidates{all: all, q: m.Quantization}
	var sideName []byte // a side's name, built here, not allocated per lookup
	for i := range m.Tensors {
		t := &m.Tensors[i]
		if done[i] {
			continue
		}
		for _, si := range cands.of(t.DType) {
			s := &all[si]
			mod, ok := s.mainModule(t)
			if !ok || !ownedBy(t, s.Owner) {
				continue
			}
			if byName == nil {
				byName = firstByName(m)
			}
			sides := make([]int, len(s.Sides))
			complete := true
			for k, side := range s.Sides {
				// JoinName(mod, side.Leaf), or <main>.<leaf>.
				switch {
				case side.OfTensor:
					sideName = append(append(append(sideName[:0], t.Name...), '.'), side.Leaf...)
				case mod == "":
					sideName = append(sideName[:0], side.Leaf...)
				default:
					sideName = append(append(append(sideName[:0], mod...), '.'), side.Leaf...)
				}
				j, ok := byName[string(sideName)]
				if !ok || done[j] || !side.accepts(m.Tensors[j].DType) {
					j = -1
				}
				sides[k] = j
				if j < 0 && !side.Optional {
					complete = false
					break
				}
			}
			bits := tensorBits(m, s, t, sides)
			if !complete || !packingFits(m, s, t, sides, bits) {
				continue
			}
			role := EncodedLinear
			if isEmbeddingModule(lastComponent(mod)) || isEmbeddingTensor(t) {
				role = Embedding // a quantized embedding table (MLX and torch quantize them)
			}
			params := logicalParams(t, s, m.Quantization)
			if bits > 0 {
				params = numel(t) * 32 / int64(bits)
			}
			*at(i) = Class{Role: role, Part: s.Main.Part, Module: mod, Scheme: s.Name,
				Params: params, Encoded: true, Bits: bits}
			done[i] = true
			for k, j := range sides {
				if j >= 0 {
					*at(j) = Class{Role: role, Part: s.Sides[k].Part, Module: mod, Scheme: s.Name, NeedBits: s.Sides[k].NeedBits, Encoded: true}
					done[j] = true
				}
			}
			encoded[mod] = s.Name
			break
		}
	}
	// GGML block-quantized weights are encoded linears (or embeddings)
	// named by their type; their scales are inside the blocks.
	var dt dtypeCache
	for i := range m.Tensors {
		t := &m.Tensors[i]
		if done[i] || leafOf(t.Name) != "weight" {
			continue
		}
		if d, ok := dt.lookup(t.DType); ok && d.BlockElems > 1 {
			mod := moduleOf(t.Name)
			role := EncodedLinear
			if isEmbeddingModule(lastComponent(mod)) {
				role = Embedding
			}
			*at(i) = Class{Role: role, Part: PartWeight, Module: mod, Scheme: strings.ToUpper(t.DType), Params: numel(t), Encoded: true}
			done[i] = true
		}
	}
	// Reparametrizations of torch.nn.utils keep a module's tensor X as the
	// tensors it is computed from: prune as X_orig, the dense parameter,
	// and X_mask, a buffer of its shape; spectral_norm as X_orig and the
	// vectors X_u and X_v; weight_norm as X_g and X_v. A whole-module save
	// keeps X as well, computed (a plain attribute of the module). X_orig
	// is the module's X; a mask and a computed X hold no weights of their
	// own.
	var origs map[int]bool // the X_orig tensors
	for i := range m.Tensors {
		t := &m.Tensors[i]
		x, source, ok := reparametrized(t.Name)
		if done[i] || !ok {
			continue
		}
		if byName == nil {
			byName = firstByName(m)
		}
		src, ok := byName[x+source]
		mask := strings.HasSuffix(t.Name, "_mask")
		if !ok || done[src] || mask && !slices.Equal(m.Tensors[src].Shape, t.Shape) {
			continue
		}
		mod := moduleOf(x)
		role := Untouched
		if leafOf(x) == "weight" && (isEmbeddingModule(lastComponent(mod)) || isEmbeddingTensor(&m.Tensors[src])) {
			role = Embedding
		}
		if mask {
			*at(i) = Class{Role: role, Part: PartMask, Module: mod}
			done[i] = true
		}
		if c, ok := byName[x]; ok && !done[c] && slices.Equal(m.Tensors[c].Shape, m.Tensors[src].Shape) {
			*at(c) = Class{Role: role, Part: PartDerivedCopy, Module: mod}
			done[c] = true
		}
		if source == "_orig" {
			if origs == nil {
				origs = map[int]bool{}
			}
			origs[src] = true
		}
	}
	// What is left: biases and leftovers of encoded modules, embeddings,
	// plain tensors.
	for i := range m.Tensors {
		t := &m.Tensors[i]
		if done[i] {
			continue
		}
		mod, leaf := moduleOf(t.Name), leafOf(t.Name)
		if origs[i] {
			leaf = strings.TrimSuffix(leaf, "_orig")
		} else if pm, pl, ok := parametrized(t.Name); ok {
			mod, leaf = pm, pl
		}
		float := dt.isFloat(t.DType)
		c := Class{Role: Untouched, Module: mod, Params: numel(t), Part: plainPart(float, mod, leaf)}
		if len(encoded) > 0 {
			for _, b := range biasLeaves {
				if bm, ok := matchLeaf(t.Name, b); ok && encoded[bm] != "" {
					c.Module, c.Part = bm, PartBias
				}
			}
		}
		if float && isDigits(leaf) {
			if cell, copied := rnnBias(t.Name); cell != "" {
				if byName == nil {
					byName = firstByName(m)
				}
				if j, ok := byName[cell]; !copied || ok && slices.Equal(m.Tensors[j].Shape, t.Shape) {
					c.Part = PartBias
					if copied {
						c.Params = 0
					}
				}
			}
		}
		switch {
		case c.Part == PartBias:
		case leaf == "weight" && float && encoded[mod] != "":
			// The module's logical weights are counted on its encoded
			// tensor; the float copy adds bytes, not weights.
			c.Part, c.Leftover, c.Scheme, c.Params = PartLeftoverWeight, true, "", 0
		case leaf == "weight" && (isEmbeddingModule(lastComponent(mod)) || isEmbeddingTensor(t)):
			c.Role, c.Part = Embedding, PartWeight
		}
		*at(i) = c
	}
}

// rnnBias tells the biases of a dynamically quantized RNN
// (torch.ao.nn.quantized.dynamic LSTM, GRU) apart: each cell's pickled
// state lists its biases, <rnn>._all_weight_values.<k>.param.0.1.<j>, and
// its packed weights, ….param.0.4.<j>.0.0, which carry the same biases
// again, ….param.0.4.<j>.0.1. For one of the first, cell is its own name;
// for a copy, cell names the bias it copies and copied is set.
func rnnBias(name string) (cell string, copied bool) {
	const marker = "._all_weight_values."
	k := strings.LastIndex(name, marker)
	if k < 0 {
		return "", false
	}
	rest := name[k+len(marker):] // <k>.param.0.<field>...
	layer, rest, _ := strings.Cut(rest, ".")
	if !isDigits(layer) {
		return "", false
	}
	rest, ok := strings.CutPrefix(rest, "param.0.")
	if !ok {
		return "", false
	}
	base := name[:len(name)-len(rest)] // ….param.0.
	if j, ok := strings.CutPrefix(rest, "1."); ok && isDigits(j) {
		return name, false
	}
	if j, ok := strings.CutPrefix(rest, "4."); ok {
		if j, ok = strings.CutSuffix(j, ".0.1"); ok && isDigits(j) {
			return base + "1." + j, true
		}
	}
	return "", false
}

// firstByName maps each tensor name of m to its first tensor.
func firstByName(m *Model) map[string]int {
	byName := make(map[string]int, len(m.Tensors))
	for k := range m.Tensors {
		if _, dup := byName[m.Tensors[k].Name]; !dup {
			byName[m.Tensors[k].Name] = k
		}
	}
	return byName
}

// reparametrized returns X for a tensor named X_mask (prune), X_u
// (spectral_norm) or X_g (weight_norm), and the suffix of the tensor X is
// computed from with it: X_orig, X_orig and X_v.
func reparametrized(name string) (x, source string, ok bool) {
	for _, r := range [...][2]string{{"_mask", "_orig"}, {"_u", "_orig"}, {"_g", "_v"}} {
		if x, ok := strings.CutSuffix(name, r[0]); ok && leafOf(x) != "" {
			return x, r[1], true
		}
	}
	return "", "", false
}

// parametrized returns the module and the name of the tensor that a
// parametrization (torch.nn.utils.parametrize, torch.ao's sparsifiers)
// keeps as <module>.parametrizations.<name>.original.
func parametrized(name string) (mod, leaf string, ok bool) {
	rest, ok := strings.CutSuffix(name, ".original")
	if !ok {
		return "", "", false
	}
	mod, leaf = moduleOf(rest), leafOf(rest)
	if leaf == "" || leafOf(mod) != "parametrizations" {
		return "", "", false
	}
	return moduleOf(mod), leaf, true
}

// schemeCandidates are, per dtype, the indices of the schemes whose main
// tensor may have it under the model's quantization config, in the order
// they are tried.
type schemeCandidates struct {
	all   []Scheme
	q     *QuantConfig
	byDT  map[string][]int
	last  string
	lastC []int
	set   bool
}

func (c *schemeCandidates) of(dtype string) []int {
	if c.set && dtype == c.last {
		return c.lastC
	}
	out, ok := c.byDT[dtype]
	if !ok {
		for i := range c.all {
			if c.all[i].Main.accepts(dtype) && methodFits(&c.all[i], c.q) {
				out = append(out, i)
			}
		}
		if c.byDT == nil {
			c.byDT = map[string][]int{}
		}
		c.byDT[dtype] = out
	}
	c.last, c.lastC, c.set = dtype, out, true
	return out
}

// dtypeCache looks dtypes up, remembering the last one: neighbouring
// tensors mostly share theirs.
type dtypeCache struct {
	name string
	d    DType
	ok   bool
	set  bool
}

func (c *dtypeCache) lookup(name string) (DType, bool) {
	if !c.set || name != c.name {
		c.d, c.ok = LookupDType(name)
		c.name, c.set = name, true
	}
	return c.d, c.ok
}

// isFloat reports whether the named dtype is a float type.
func (c *dtypeCache) isFloat(name string) bool {
	d, ok := c.lookup(name)
	return ok && d.Float
}

// mainModule reports whether t is the main tensor of s, and returns its
// module.
func (s *Scheme) mainModule(t *Tensor) (string, bool) {
	if s.Main.Leaf != "" {
		return matchLeaf(t.Name, s.Main.Leaf)
	}
	if len(s.Main.DTypes) == 0 || len(t.Shape) < 2 {
		return "", false
	}
	if i := strings.Index(t.Name, "._packed_params"); i >= 0 {
		return t.Name[:i], true
	}
	if strings.HasPrefix(t.Name, "_packed_params") {
		return "", true
	}
	return moduleOf(t.Name), true
}

// ownedBy reports whether one of the classes holding t contains owner
// ("" fits any tensor).
func ownedBy(t *Tensor, owner string) bool {
	if owner == "" {
		return true
	}
	for _, o := range t.Owners {
		if strings.Contains(o, owner) {
			return true
		}
	}
	return false
}

// isEmbeddingTensor reports whether the file says that t is an embedding
// table whatever its module is named: the module holding it is a torch
// Embedding or EmbeddingBag (float or quantized; TorchScript and
// whole-model pickles name it), or t is the _packed_weight that a
// quantized Embedding's EmbeddingPackedParams keeps in a state_dict (a
// quantized Linear's is _packed_params).
func isEmbeddingTensor(t *Tensor) bool {
	if strings.HasSuffix(t.Name, "._packed_params._packed_weight") || t.Name == "_packed_params._packed_weight" {
		return true
	}
	// The innermost class that is a module: packed parameters, script
	// objects and TorchScript's typed-list builders sit inside it.
	for i := len(t.Owners) - 1; i >= 0; i-- {
		o := t.Owners[i]
		class := leafOf(o)
		if strings.HasPrefix(o, "torch.classes.") || strings.HasPrefix(o, "torch.jit._pickle.") ||
			o == "torch.ScriptObject" || strings.Contains(class, "PackedParams") {
			continue
		}
		switch class {
		case "Embedding", "EmbeddingBag":
			return strings.HasPrefix(o, "torch.") || strings.HasPrefix(o, "__torch__.torch.")
		}
		return false
	}
	return false
}

// methodFits reports whether a scheme may apply under the model's
// quantization config: a config naming another method rules it out.
func methodFits(s *Scheme, q *QuantConfig) bool {
	return s.Method == "" || q == nil || q.Method == "" || strings.EqualFold(s.Method, q.Method)
}

// packingFits tells GPTQ's and AWQ's identically named tensors apart by
// shape (see Scheme.Packed): GPTQ's qweight has the scales' last dimension,
// AWQ's a fraction of it. bits is what tensorBits found.
func packingFits(m *Model, s *Scheme, main *Tensor, sides []int, bits int) bool {
	if s.Packed == "" || len(main.Shape) != 2 {
		return true
	}
	out, ok := scaleOut(m, s, sides)
	if !ok {
		return true
	}
	switch s.Packed {
	case "rows":
		return main.Shape[1] == out
	case "cols":
		if bits > 0 {
			return main.Shape[1] != out
		}
		pack := logicalParams(main, s, m.Quantization) / max(numel(main), 1)
		return main.Shape[1]*pack == out
	}
	return true
}

// scaleOut is the last dimension of a scheme's "scale" side, the output
// size.
func scaleOut(m *Model, s *Scheme, sides []int) (int64, bool) {
	for k, j := range sides {
		if j < 0 || s.Sides[k].Part != PartScale {
			continue
		}
		scale := m.Tensors[j].Shape
		if len(scale) == 0 {
			return 0, false
		}
		return scale[len(scale)-1], true
	}
	return 0, false
}

// tensorBits returns the bits per weight that a packed 32-bit main tensor
// and its sides imply, whatever a quantization_config says, or 0 when they
// do not tell: GPTQ's qweight [in*bits/32, out] with g_idx [in] (one group
// index per input), AWQ's qweight [in, out*bits/32] with scales [groups,
// out]. Only whole bit widths from 2 to 8 count.
func tensorBits(m *Model, s *Scheme, main *Tensor, sides []int) int {
	if s.Packed == "" || len(main.Shape) != 2 || main.DType != "int32" {
		return 0
	}
	var num, den int64 // bits = num / den
	switch s.Packed {
	case "rows":
		for k, j := range sides {
			if j >= 0 && s.Sides[k].Part == PartGroupIndex && len(m.Tensors[j].Shape) == 1 {
				num, den = main.Shape[0]*32, m.Tensors[j].Shape[0]
			}
		}
	case "cols":
		if out, ok := scaleOut(m, s, sides); ok {
			num, den = main.Shape[1]*32, out
		}
	}
	if den <= 0 || num%den != 0 || num/den < 2 || num/den > 8 {
		return 0
	}
	return int(num / den)
}

// NotConverted reports whether the config keeps the module unquantized.
func (q *QuantConfig) NotConverted(module string) bool {
	for _, n := range q.ModulesNotToConvert {
		if module == n || strings.HasSuffix(module, "."+n) || strings.HasPrefix(module, n+".") {
			return true
		}
	}
	return false
}

func logicalParams(t *Tensor, s *Scheme, q *QuantConfig) int64 {
	n := numel(t)
	bits := s.WeightBits
	if bits > 0 && q != nil && q.Bits > 0 {
		bits = q.Bits
	}
	d, ok := LookupDType(t.DType)
	if bits <= 0 || !ok || d.BlockElems != 1 {
		return n
	}
	return n * (d.BlockBytes * 8 / int64(bits))
}

// plainPart is the part of a tensor no scheme claims; float is whether its
// dtype is a float type.
func plainPart(float bool, mod, leaf string) Part {
	last := lastComponent(mod)
	switch {
	case strings.Contains(last, "norm") || strings.HasPrefix(last, "ln"):
		return PartNorm
	case leaf == "bias":
		return PartBias
	case !float:
		return PartBuffer
	case leaf == "weight":
		return PartWeight
	}
	return PartParam
}

// isCheckpointState reports whether a tensor is under a top-level key of a
// training checkpoint that holds no model weights (Lightning's
// optimizer_states, lr_schedulers, callbacks and loops, an EMA copy).
func isCheckpointState(name string) bool {
	top, _, nested := strings.Cut(name, ".")
	return nested && isCheckpointStateKey(top)
}

// heldByOptimizer reports whether a tensor is held by a torch optimizer
// object, whatever the keys above it: torch.save(optimizer), or an
// optimizer pickled whole inside a checkpoint ({"model": m, "opt": opt}).
// The file names the class (torch.optim.adam.Adam); torch.optim.swa_utils
// holds AveragedModel, a copy of the model, and is not an optimizer.
func heldByOptimizer(owners []string) bool {
	for _, o := range owners {
		if rest, ok := strings.CutPrefix(o, "torch.optim."); ok && !strings.HasPrefix(rest, "swa_utils.") {
			return true
		}
	}
	return false
}

// isOptimizer reports whether a tensor is optimizer state: under an
// optimizer key at any depth.
func isOptimizer(name string) bool {
	// Every optimizer key starts with "opt": a name without it (nearly
	// every name) is decided by one search. Otherwise every component but
	// the last, without splitting the name into a slice.
	if !strings.Contains(name, "opt") {
		return false
	}
	for {
		p, rest, more := strings.Cut(name, ".")
		if !more {
			return false
		}
		if isOptimizerKey(p) {
			return true
		}
		name = rest
	}
}

// matchLeaf reports whether name is leaf or ends in "."+leaf, and returns
// the module prefix.
func matchLeaf(name, leaf string) (string, bool) {
	if name == leaf {
		return "", true
	}
	if strings.HasSuffix(name, leaf) && len(name) > len(leaf) && name[len(name)-len(leaf)-1] == '.' {
		return name[:len(name)-len(leaf)-1], true
	}
	return "", false
}

func moduleOf(name string) string {
	if i := strings.LastIndexByte(name, '.'); i >= 0 {
		return name[:i]
	}
	return ""
}

func leafOf(name string) string {
	return name[strings.LastIndexByte(name, '.')+1:]
}

func lastComponent(mod string) string { return leafOf(mod) }

// isLayerWord reports whether a name component is a container under which
// models number their layers: "layers.3", "blocks.0", "h.11", "blk.7".
func isLayerWord(w string) bool {
	switch w {
	case "layers", "blocks", "h", "blk", "layer", "block":
		return true
	}
	return false
}

// LayerOf returns the layer prefix of a tensor or module name
// ("model.layers.3" for "model.layers.3.mlp.up_proj.weight"), or "": the
// name up to the last "<word>.<number>" pair. It runs on every tensor, so
// it walks the name from its end, where the last pair is found first, and
// looks at the component before a number only (a search per component and
// a map lookup per number were a fifth of a 100,000-tensor audit).
func LayerOf(name string) string {
	end := len(name) // the component is name[start:end]
	for end > 0 {
		start := end
		for start > 0 && name[start-1] != '.' {
			start--
		}
		if start == 0 {
			return ""
		}
		if isDigits(name[start:end]) {
			w := start - 1
			for w > 0 && name[w-1] != '.' {
				w--
			}
			if isLayerWord(name[w : start-1]) {
				return name[:end]
			}
		}
		end = start - 1
	}
	return ""
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func numel(t *Tensor) int64 {
	n, err := Numel(t.Shape)
	if err != nil {
		return 0
	}
	return n
}
