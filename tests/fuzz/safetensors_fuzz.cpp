// Fuzz target: the safetensors container (models/safetensors.hpp), which every weights file, quantized model, trace
// and dump goes through. Checks beyond "no crash": the whole-file reader and the one-tensor-at-a-time reader accept
// the same files and return the same tensors bit for bit (two code paths over one header check); a file they accept
// then goes through VarModel's weight checks for the tiny config (tests/fuzz/tiny_model.hpp), as `--weights` does.
#include <cstdint>
#include <cstring>

#include "models/safetensors.hpp"
#include "models/var_model.hpp"
#include "models/vqvae.hpp"
#include "tests/fuzz/fuzz_util.hpp"
#include "tests/fuzz/tiny_model.hpp"

namespace {

using namespace fpqvar;

// Bit for bit (one memcmp per vector: an element loop would spend the fuzzer's time tracing comparisons).
bool same_tensor(const models::Tensor& a, const models::Tensor& b) {
  const auto same = [](const auto& x, const auto& y) {
    return x.size() == y.size() && (x.empty() || std::memcmp(x.data(), y.data(), x.size() * sizeof(x[0])) == 0);
  };
  return a.dtype == b.dtype && a.shape == b.shape && same(a.f32, b.f32) && same(a.i64, b.i64) && same(a.u8, b.u8);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static fuzz::InputFile file;
  static const models::VarConfig config = fuzz::tiny_config();
  const auto& path = file.write(data, size);
  models::TensorFile whole;
  bool whole_ok = false;
  try {
    whole = models::read_safetensors(path);
    whole_ok = true;
  } catch (const models::SafetensorsError& e) {
    fuzz::check_error(e, path.string());
  }
  try {
    const models::SafetensorsReader reader(path);
    if (!whole_ok) fuzz::finding("SafetensorsReader accepts a file read_safetensors rejects", "");
    if (reader.metadata() != whole.metadata) fuzz::finding("the two readers disagree on the metadata", "");
    if (reader.entries().size() != whole.tensors.size()) fuzz::finding("the two readers disagree on the tensors", "");
    for (const std::string& name : reader.names_in_file_order()) {
      const auto it = whole.tensors.find(name);
      if (it == whole.tensors.end() || !same_tensor(reader.read(name), it->second))
        fuzz::finding("the two readers disagree on a tensor", name);
    }
  } catch (const models::SafetensorsError& e) {
    if (whole_ok) fuzz::finding("read_safetensors accepts a file SafetensorsReader rejects", e.what());
    fuzz::check_error(e, path.string());
  }
  if (whole_ok) {
    try {
      const models::VarModel model(config, whole);
    } catch (const models::ModelError& e) {
      fuzz::check_error(e);
    }
  }
  return 0;
}
