// Fuzz target: the safetensors container (models/safetensors.hpp), which every weights file, quantized model, trace
// and dump goes through. Checks beyond "no crash": the whole-file reader and the one-tensor-at-a-time reader accept
// the same files and return the same tensors bit for bit (two code paths over one header check); a file they accept
// then goes through VarModel's weight checks for the tiny config (tests/fuzz/tiny_model.hpp), as `--weights` does.
#include <bit>
#include <cstdint>

#include "models/safetensors.hpp"
#include "models/var_model.hpp"
#include "models/vqvae.hpp"
#include "tests/fuzz/fuzz_util.hpp"
#include "tests/fuzz/tiny_model.hpp"

namespace {

using namespace fpqvar;

bool same_tensor(const models::Tensor& a, const models::Tensor& b) {
  if (a.dtype != b.dtype || a.shape != b.shape || a.i64 != b.i64 || a.u8 != b.u8 || a.f32.size() != b.f32.size())
    return false;
  for (std::size_t i = 0; i < a.f32.size(); ++i)
    if (std::bit_cast<std::uint32_t>(a.f32[i]) != std::bit_cast<std::uint32_t>(b.f32[i])) return false;
  return true;
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
