// contract_link_probe: a program linked against fpqvar::contract alone (tests/quant/CMakeLists.txt), the subject of
// the contract_link_line test. It includes every public header of the contract, compiled with the poison headers
// (nlohmann/json.hpp, nlohmann/json_fwd.hpp, cblas.h that #error) first on its include path, so a header of the
// contract that includes JSON or BLAS fails this build; and it calls into every translation unit of the contract,
// so every archive member is linked and a BLAS or JSON symbol used by any of them would be an undefined reference.
// It runs one group through quantizer -> pe -> accumulate and checks it against gemm_contract, and exits 0 when
// they agree.
#include <cstdio>
#include <vector>

#include "quant/encode.hpp"
#include "quant/fast_quant.hpp"
#include "quant/format.hpp"
#include "quant/fp_bits.hpp"
#include "quant/hadamard.hpp"
#include "quant/int_gemm.hpp"
#include "quant/layer_kind.hpp"
#include "quant/parallel.hpp"
#include "quant/pe_contract.hpp"
#include "quant/product_table.hpp"
#include "quant/rotation.hpp"
#include "quant/tensor_quant.hpp"
#include "quant/unit_contract.hpp"

int main() {
  namespace q = fpqvar::quant;
  std::vector<float> x(128), w(128);
  for (int i = 0; i < 128; ++i) {
    x[std::size_t(i)] = float(i % 13) - 6.0f;
    w[std::size_t(i)] = float(i % 7) * 0.25f - 0.5f;
  }
  q::hadamard_group(x, {}, q::RotationSpec{q::parse_rotation("ght"), 128, 42});  // hadamard.cpp, rotation.cpp
  q::QuantSpec spec;                                                              // format.cpp
  spec.format = q::format_by_name("e2m1");
  const q::QuantizedTensor qa = q::quantize_fast(x, 1, 128, spec), qw = q::quantize(w, 1, 128, spec);  // fast_quant, tensor_quant
  std::vector<std::uint8_t> codes(128);
  const q::GroupScales s = q::quantizer_group(x, spec, codes);
  const q::ProductTable table = q::make_product_table(spec.format, spec.format);  // product_table.cpp
  const float acc = q::accumulate_group(0.0f, q::pe_group_sums(table, codes, qw.codes).pos, table.frac_bits, s.scale,
                                        qw.scales[0]);                          // pe_contract.cpp
  const std::vector<float> c = q::gemm_contract(qa, qw);
  const std::vector<float> c_int = q::gemm_int(qa, q::pack_weight(qw));        // int_gemm*.cpp
  const bool ok = codes == qa.codes && acc == c[0] && c_int[0] == c[0] &&
                  q::to_string(q::parse_layer_kind("fc2")) == "fc2" &&             // layer_kind.cpp
                  q::encode(spec.format, 6.0f, 1.0f, q::EncodeMode{}) == 0b0111;  // encode.cpp
  std::printf("contract_link_probe: %s (C[0][0] = %g)\n", ok ? "ok" : "MISMATCH", static_cast<double>(c[0]));
  return ok ? 0 : 1;
}
