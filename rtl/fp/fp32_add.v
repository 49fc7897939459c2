// fp32_add: IEEE 754 binary32 addition y = a + b, rounded to nearest even, with subnormal inputs and results (no
// flush to zero), overflow to +-inf, +-inf and NaN: the FP32 add of the arithmetic contract (quant/hadamard.hpp's
// FWHT, quant/pe_contract.hpp's accumulation), i.e. what an x86 `addss` returns. Purely combinational.
//
// How: |x| >= |z| after a swap (x, z = a, b ordered by magnitude); z's significand is aligned to x's exponent in a
// 27-bit window (24 bits, guard, round, and a sticky bit that ORs everything shifted further); the sum or
// difference is normalized (a carry shifts right once; a cancellation shifts left by the leading zeros, but never
// below the exponent of the smallest normal: the result is then subnormal) and rounded once on guard, round, sticky.
// Three bits below the result suffice: with an alignment of 2 or more the normalization shifts left by at most one.
// Worked example: 1.0 + 2^-24 (0x3F800000 + 0x33800000): d = 24, z's significand 0x800000 lands on the guard bit
// with nothing below it: sum 1.0 + half an ulp, a tie, and the even neighbour 1.0 wins: y = 0x3F800000.
// Zeros: an exact zero sum is +0, except (-0) + (-0) = -0. NaN: x86's choice (a NaN operand comes back quieted, a's
// first; inf - inf gives the default NaN 0xFFC00000); the contract fixes only that the result is a NaN (C++ may
// evaluate a + b as b + a), and the tests compare NaN-ness.
module fp32_add (
    input  wire [31:0] a,
    input  wire [31:0] b,
    output wire [31:0] y
);
  wire a_nan = (a[30:23] == 8'hff) && (a[22:0] != 23'd0);
  wire b_nan = (b[30:23] == 8'hff) && (b[22:0] != 23'd0);
  wire a_inf = (a[30:0] == 31'h7f800000);
  wire b_inf = (b[30:0] == 31'h7f800000);

  wire swap = b[30:0] > a[30:0];
  wire [31:0] x = swap ? b : a;  // |x| >= |z|
  wire [31:0] z = swap ? a : b;
  wire [8:0] ex = {1'b0, (x[30:23] == 8'd0) ? 8'd1 : x[30:23]};
  wire [8:0] ez = {1'b0, (z[30:23] == 8'd0) ? 8'd1 : z[30:23]};
  wire [23:0] mx = {x[30:23] != 8'd0, x[22:0]};
  wire [23:0] mz = {z[30:23] != 8'd0, z[22:0]};
  wire [8:0] d = ex - ez;  // >= 0

  // z aligned: 24 bits + guard + round + sticky
  wire [26:0] z_full = {mz, 3'b000};
  wire big = d >= 9'd27;
  wire [4:0] dd = big ? 5'd0 : d[4:0];
  wire [26:0] z_shift = big ? 27'd0 : (z_full >> dd);
  wire [26:0] lost_mask = big ? {27{1'b1}} : ((27'd1 << dd) - 27'd1);
  wire sticky = (z_full & lost_mask) != 27'd0;
  wire [26:0] z_al = {z_shift[26:1], z_shift[0] | sticky};

  wire sub = x[31] ^ z[31];
  wire [27:0] sum = sub ? ({1'b0, mx, 3'b000} - {1'b0, z_al}) : ({1'b0, mx, 3'b000} + {1'b0, z_al});

  // normalize: n[26] the leading bit (hidden), n[25:3] fraction, n[2] guard, n[1] round, n[0] sticky
  reg [4:0] lz;
  integer i;
  always @* begin
    lz = 5'd27;
    for (i = 0; i <= 26; i = i + 1)
      if (sum[i]) lz = 5'd26 - i[4:0];
  end
  wire [8:0] room = ex - 9'd1;  // left shift that keeps the exponent >= 1
  wire [4:0] lshift = ({4'd0, lz} > room) ? room[4:0] : lz;
  wire [26:0] n = sum[27] ? {sum[27:2], sum[1] | sum[0]} : (sum[26:0] << lshift);
  wire [8:0] e = sum[27] ? ex + 9'd1 : ex - {4'd0, lshift};

  wire inc = n[2] && (n[1] || n[0] || n[3]);
  wire [24:0] r = {1'b0, n[26:3]} + {24'd0, inc};
  // e - 1 in the exponent field plus the significand with its hidden bit: the hidden bit adds the last 1; a
  // subnormal (hidden bit 0, e = 1) gets field 0; a rounding carry (r = 2^24) adds the 1 of the next binade.
  wire [32:0] packed_sum = {e - 9'd1, 23'd0} + {8'd0, r};
  wire overflow = packed_sum[31:23] >= 9'd255;

  wire zero = (sum == 28'd0);
  wire [31:0] finite = zero ? {x[31] && !sub, 31'd0} :
                       overflow ? {x[31], 31'h7f800000} : {x[31], packed_sum[30:0]};
  assign y = a_nan ? (a | 32'h00400000) :
             b_nan ? (b | 32'h00400000) :
             (a_inf && b_inf && (a[31] != b[31])) ? 32'hffc00000 :
             a_inf ? a :
             b_inf ? b : finite;
  wire unused_sum = packed_sum[32];
endmodule
