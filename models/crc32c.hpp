// CRC-32C (Castagnoli: polynomial 0x1EDC6F41, reflected 0x82F63B78, initial value and final XOR 0xFFFFFFFF), the
// checksum of iSCSI (RFC 3720), ext4 and Btrfs: the content digest of the tensors of a quantized model file
// (models/quantized_model.hpp). It detects every burst error up to 32 bits and any other random corruption with
// probability 1 - 2^-32; it is no defence against a deliberate edit (whoever can edit the data can recompute any
// digest stored beside it, cryptographic or not), which is not its job.
// Check value: crc32c("123456789") = 0xE3069283 (RFC 3720 B.4's polynomial, the catalogue's check value).
// x86 CPUs with SSE4.2 compute it with the crc32 instruction, 8 bytes at a time (several GB/s); others use a table.
#pragma once

#include <cstdint>
#include <span>

namespace fpqvar::models {

// Continues a CRC: crc32c(b, crc32c(a)) == crc32c(a ++ b). Start with crc = 0.
[[nodiscard]] std::uint32_t crc32c(std::span<const std::uint8_t> bytes, std::uint32_t crc = 0);
// The table form alone (what a CPU without SSE4.2 runs), for tests.
[[nodiscard]] std::uint32_t crc32c_table_only(std::span<const std::uint8_t> bytes, std::uint32_t crc = 0);

}  // namespace fpqvar::models
