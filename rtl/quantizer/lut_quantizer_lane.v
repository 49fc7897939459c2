// lut_quantizer_lane: one lane of rtl/quantizer/lut_quantizer.v (see there for the thresholds and the key).
// One lane's binary search: x (the registered input) -> code, through NSEG register segments (the last segment's
// result is combinational: the caller registers it). Stage s (0 .. IW-1) decides bit IW-1-s of the magnitude index:
// cand = partial | 2^(IW-1-s); keep it when key >= D[cand - 1]. The D of the side (DFQ: the sign bit) are read from
// the bank of the stage's segment. After IW stages the index is the number of thresholds <= key: N at most, the
// saturated maximum.
module lut_quantizer_lane #(
    parameter integer IW = 3,
    parameter integer N = 7,
    parameter integer SIDES = 1,
    parameter integer BANK = 7 * 16 + 32,
    parameter integer NSEG = 3,
    parameter integer REG_EVERY = 1
) (
    input  wire                 clk,
    input  wire                 advance,
    input  wire [15:0]          x,
    input  wire [NSEG*BANK-1:0] banks,
    output wire [IW:0]          code
);
  // The key: the magnitude pattern with !sign below it (ties-up thresholds use that bit; RNE ones end in 0).
  wire [15:0] key0 = {x[14:0], !x[15]};
  wire nan0 = (x[14:10] == 5'h1f) && (x[9:0] != 10'd0);
  // Per stage boundary s (0 .. IW): the key, sign, NaN flag and partial index entering stage s.
  wire [15:0] key [0:IW] /*verilator split_var*/;
  wire [1:0] sign_nan [0:IW] /*verilator split_var*/;  // {nan, sign}
  wire [IW-1:0] part [0:IW] /*verilator split_var*/;
  assign key[0] = key0;
  assign sign_nan[0] = {nan0, x[15]};
  assign part[0] = {IW{1'b0}};
  genvar s;
  generate
    for (s = 0; s < IW; s = s + 1) begin : g_stage
      localparam integer SEG = s / REG_EVERY;
      wire [BANK-1:0] bank = banks[SEG*BANK +: BANK];
      wire [IW-1:0] cand = part[s] | ({{(IW-1){1'b0}}, 1'b1} << (IW - 1 - s));
      wire [IW-1:0] j = cand - 1'b1;
      wire side = (SIDES > 1) && sign_nan[s][0];
      wire [15:0] d = bank[({{(32-IW){1'b0}}, j} + (side ? N : 32'd0)) * 16 +: 16];
      wire ge = key[s] >= d;
      wire [IW-1:0] part_next = ge ? cand : part[s];
      if (((s + 1) % REG_EVERY) == 0 && s < IW - 1) begin : g_reg
        reg [15:0] key_q;
        reg [1:0] sn_q;
        reg [IW-1:0] part_q;
        always @(posedge clk) begin
          if (advance) begin
            key_q <= key[s];
            sn_q <= sign_nan[s];
            part_q <= part_next;
          end
        end
        assign key[s+1] = key_q;
        assign sign_nan[s+1] = sn_q;
        assign part[s+1] = part_q;
      end else begin : g_wire
        assign key[s+1] = key[s];
        assign sign_nan[s+1] = sign_nan[s];
        assign part[s+1] = part_next;
      end
    end
  endgenerate
  // NaN -> 0; otherwise the sign over the index (-0 and the zero of a zero scale keep the sign).
  assign code = sign_nan[IW][1] ? {(IW+1){1'b0}} : {sign_nan[IW][0], part[IW]};
  wire unused_key = ^key[IW];
endmodule
