// fp32_mul: IEEE 754 binary32 multiplication y = a * b, rounded to nearest even, with subnormal inputs and results
// (no flush to zero), overflow to +-inf, +-inf and NaN: an x86 `mulss`. Purely combinational; with a constant
// operand synthesis folds the significand product into shifts and adds.
//
// How: the exact product of the two 24-bit significands (subnormals without the hidden bit) is P * 2^(E0) with
// E0 = ea + eb - 300 (ea, eb the exponent fields, 1 for a subnormal); P is normalized to 48 bits (leading one at
// bit 47, exponent ev of that bit); a normal result keeps P's top 24 bits, a subnormal one (ev < -126) is shifted
// right first by -126 - ev so that its last kept bit has weight 2^-149; guard and sticky below decide the one
// rounding. Worked example: 1.5 * 1.5 (0x3FC00000): P = 0xC00000^2 = 0x900000000000 (= 2.25 * 2^46), already
// normalized, kept 0x900000, nothing below: y = 0x40100000 = 2.25.
// NaN: a NaN operand comes back quieted (a's first); inf * 0 gives the default NaN 0xFFC00000 (x86); the tests
// compare NaN-ness.
module fp32_mul (
    input  wire [31:0] a,
    input  wire [31:0] b,
    output wire [31:0] y
);
  wire a_nan = (a[30:23] == 8'hff) && (a[22:0] != 23'd0);
  wire b_nan = (b[30:23] == 8'hff) && (b[22:0] != 23'd0);
  wire a_inf = (a[30:0] == 31'h7f800000);
  wire b_inf = (b[30:0] == 31'h7f800000);
  wire a_zero = (a[30:0] == 31'd0);
  wire b_zero = (b[30:0] == 31'd0);
  wire sign = a[31] ^ b[31];

  wire [23:0] ma = {a[30:23] != 8'd0, a[22:0]};
  wire [23:0] mb = {b[30:23] != 8'd0, b[22:0]};
  wire signed [10:0] ea = $signed({3'd0, (a[30:23] == 8'd0) ? 8'd1 : a[30:23]});
  wire signed [10:0] eb = $signed({3'd0, (b[30:23] == 8'd0) ? 8'd1 : b[30:23]});
  wire [47:0] p = ma * mb;

  reg [5:0] lz;
  integer i;
  always @* begin
    lz = 6'd0;
    for (i = 0; i < 48; i = i + 1)
      if (p[i]) lz = 6'd47 - i[5:0];
  end
  wire [47:0] pn = p << lz;
  // value = pn * 2^(E0 - lz), E0 = ea + eb - 300: the leading bit (47) has exponent ev = ea + eb - 253 - lz
  wire signed [10:0] ev = ea + eb - 11'sd253 - $signed({5'd0, lz});
  wire subnormal = ev < -11'sd126;
  wire signed [10:0] dsh = -11'sd126 - ev;  // extra right shift of a subnormal result (>= 1)
  wire [5:0] sh = !subnormal ? 6'd0 : (dsh > 11'sd48) ? 6'd48 : dsh[5:0];
  wire [47:0] pd = pn >> sh;
  wire [47:0] lost_mask = (48'd1 << sh) - 48'd1;
  wire lost = (pn & lost_mask) != 48'd0;

  wire [23:0] kept = pd[47:24];
  wire guard = pd[23];
  wire sticky = (pd[22:0] != 23'd0) || lost;
  wire inc = guard && (sticky || kept[0]);
  wire [24:0] r = {1'b0, kept} + {24'd0, inc};
  // normal: field ev + 126 plus the hidden bit's 1; subnormal: the significand alone
  wire signed [10:0] field = subnormal ? 11'sd0 : ev + 11'sd126;
  wire [33:0] packed_prod = {field[9:0], 23'd0} + {9'd0, r};
  wire overflow = !subnormal && (ev > 11'sd127 || packed_prod[31:23] >= 9'd255);

  wire [31:0] finite = (a_zero || b_zero) ? {sign, 31'd0} :
                       overflow ? {sign, 31'h7f800000} : {sign, packed_prod[30:0]};
  assign y = a_nan ? (a | 32'h00400000) :
             b_nan ? (b | 32'h00400000) :
             ((a_inf && b_zero) || (b_inf && a_zero)) ? 32'hffc00000 :
             (a_inf || b_inf) ? {sign, 31'h7f800000} : finite;
  wire unused_prod = ^{packed_prod[33:32], field[10]};
endmodule
