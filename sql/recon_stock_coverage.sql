-- recon_stock_coverage: one row per product_code ordered.
--
-- Rule (DESIGN.md 4.2). pending_qty = quantity of the order products in state NO_EXPEDITION;
-- available_qty = the sum over warehouses; shortfall = max(0, pending_qty - available_qty).
--   state = NO_STOCK_RECORD   no warehouse lists the code (available_qty null, shortfall = pending_qty)
--         | SHORTFALL         shortfall > 0
--         | COVERED
--
-- Decisions where DESIGN.md is silent:
-- * Every code that appears in an order has a row, even with nothing pending (COVERED, or
--   NO_STOCK_RECORD with shortfall 0), so a missing catalogue entry is seen before it bites.
-- * A warehouse that lists the code without a quantity counts as 0 available.
-- * Products without a product_code are left out (there is no code to cover).
WITH demand AS (
    SELECT product_code,
           SUM(CASE WHEN state = 'NO_EXPEDITION' THEN quantity ELSE 0 END) AS pending_qty,
           COUNT(*) AS order_products
    FROM recon_order_fulfilment
    WHERE product_code IS NOT NULL
    GROUP BY product_code
),
supply AS (
    SELECT product_code, SUM(COALESCE(available_quantity, 0)) AS available_qty, COUNT(*) AS warehouses
    FROM stock
    GROUP BY product_code
)
SELECT
    d.product_code,
    CAST(d.pending_qty AS BIGINT) AS pending_qty,
    CAST(s.available_qty AS BIGINT) AS available_qty,
    COALESCE(s.warehouses, 0) AS warehouses,
    d.order_products,
    CAST(CASE
        WHEN s.product_code IS NULL THEN d.pending_qty
        WHEN d.pending_qty > s.available_qty THEN d.pending_qty - s.available_qty
        ELSE 0
    END AS BIGINT) AS shortfall,
    CASE
        WHEN s.product_code IS NULL THEN 'NO_STOCK_RECORD'
        WHEN d.pending_qty > s.available_qty THEN 'SHORTFALL'
        ELSE 'COVERED'
    END AS state
FROM demand d
LEFT JOIN supply s ON s.product_code = d.product_code
