// Package pytorch reads the tensor table of torch.save checkpoints from their
// headers and pickle, never from tensor data.
//
// Two layouts exist:
//
//   - Zip (torch >= 1.6, the default): an uncompressed zip archive with one
//     folder, <prefix>/ (the file's stem, or "archive"). <prefix>/data.pkl is
//     the pickled object; each storage is the record <prefix>/data/<key>. A
//     storage takes the record's size in the file and starts at the record's
//     data offset.
//   - Legacy (_use_new_zipfile_serialization=False): pickles back to back
//     (magic number, protocol version, sys_info, the object, the list of
//     storage keys), then each storage in key order as an int64 element count
//     followed by its bytes.
//
// In both, the pickle refers to storages by persistent id
// ('storage', torch.FloatStorage, key, location, numel[, view]) and rebuilds
// tensors with torch._utils._rebuild_tensor_v2 and friends. The pickle is
// read by this package's own pickle machine (scan.go says why), which checks
// every argument against the bytes that remain as it builds the value; no
// class named by the pickle is ever run: an allow-list maps torch's rebuild
// functions, storage classes and dtypes to Go stand-ins, and any other class
// becomes an inert object that records its arguments and state. The names a
// pickle imports outside torch's weights_only allow-list are recorded in
// accounting.File.Globals (unsafe.go), for the unsafe-pickle finding.
//
// Tensors are named by their path through the unpickled value, as
// state_dict() would name them: dict keys joined with "." (int keys in
// decimal), list and tuple elements by index, object attributes by name,
// except that an nn.Module's _parameters, _buffers and _modules are
// transparent. So a whole pickled module (torch.save(model)) gives
// "blocks.0.attn.q.weight" and a training checkpoint gives
// "optimizer.state.0.exp_avg". A dict entry whose key holds a tensor
// (torch.save of an optimizer object keys its state by the parameters) is
// named by its position i: its key's tensors "<key i>", its value's
// "<value i>" ("state.<value 0>.exp_avg"). A sparse tensor is the dense
// tensors of its layout, named as torch names them: "sp.indices" and
// "sp.values" (COO), "m.crow_indices", "m.col_indices" and "m.values"
// (CSR). A tensor on the meta device has a dtype and a shape but no data
// (accounting.NoDataOffset): torch.save pickles it with
// _rebuild_meta_tensor_no_storage, torch.jit.save over a storage whose
// location is "meta" and whose record is empty. A tensor object reached twice is listed
// under each name, as state_dict lists tied weights; tensors that share a
// storage (tied weights, slices) share accounting.Tensor.Storage, the
// record name ("data/3") or legacy key. Two tensors of one name, and a dict
// that sets a key twice, are errors: the file says two things.
package pytorch
