package accounting

// Part names what a tensor is for within its module: "weight", "bias",
// "sign", "scale", "zero_point", ... A scheme's rows (and a user's rules)
// name the parts of their tensors; the parts the accounting itself tells
// apart are the constants below.
type Part string

// The parts the classification gives and the accounting tells apart.
const (
	// PartWeight is a weight: the main tensor of an encoded module, or a
	// plain float weight.
	PartWeight Part = "weight"
	// PartLeftoverWeight is a float weight kept beside its encoded form.
	PartLeftoverWeight Part = "leftover_weight"
	PartBias           Part = "bias"
	PartNorm           Part = "norm"
	// PartBuffer is a non-float tensor outside any scheme.
	PartBuffer Part = "buffer"
	// PartParam is any other plain tensor.
	PartParam Part = "param"
	// PartState is optimizer state.
	PartState Part = "state"
	// PartScale and PartGroupIndex are side tensors of a packed scheme
	// whose shapes tell its bits per weight.
	PartScale      Part = "scale"
	PartGroupIndex Part = "group_index"
	// PartMask is a pruning mask (torch.nn.utils.prune's <name>_mask): it
	// says which weights of <name>_orig are zero and holds none itself.
	PartMask Part = "mask"
	// PartDerivedCopy is a tensor a reparametrization computes from others
	// (prune's <name>_orig x <name>_mask, weight_norm's, spectral_norm's)
	// that a whole-module save keeps beside them, as the module's <name>.
	PartDerivedCopy Part = "derived_copy"
)
