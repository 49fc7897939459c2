-- Each format's design with the fewest LUTs that reaches a throughput (ties: the faster), from the example sweep:
--   sqlite3 -header -markdown vck190-formats.sqlite < docs/sql/sweep_iso_throughput.sql
WITH t(x) AS (VALUES (0.3), (0.4), (0.5)),
     ranked AS (
       SELECT t.x, v.*, row_number() OVER (PARTITION BY t.x, v.format ORDER BY v.lut, v.images_per_s DESC) AS n
       FROM t JOIN sweep_vck190_formats AS v ON v.status = 'ok' AND v.images_per_s >= t.x)
SELECT x AS "images/s >=", format, recipe, pe_array_rows || 'x' || pe_array_cols AS shape, dram,
       round(images_per_s, 3) AS "images/s", CAST(lut AS INT) AS lut, round(energy_j_per_image, 1) AS "J/image",
       round(quality_local_sqnr_db, 1) AS "local SQNR dB"
FROM ranked WHERE n = 1 ORDER BY x, lut;
