-- recon_order_fulfilment: one row per order product (order_id, subscription_device_id).
--
-- Rule (DESIGN.md 4.1). A product's expedition is the one whose products hold the same
-- subscription_device_id; with several (re-expeditions), the one whose last status is latest
-- (ties: the greater expedition_id). An expedition's last status is the latest by timestamp
-- (ties: the later in the list). An expedition with no status history is IN_PROGRESS and is
-- never STUCK.
--   state = NO_EXPEDITION                         no expedition holds the device
--         | DELIVERED | RETURNED | CANCELLED | INCIDENCE   the last status's category
--         | STUCK                                 IN_PROGRESS, last status older than
--                                                 :stuck_after_days days before :as_of
--         | IN_PROGRESS
-- days_since_last_status = whole days from the last status to :as_of.
-- logistics_status_agrees: does the logistics system's own view (products_with_expedition:
-- the product's current expedition and that expedition's current status) agree with the
-- one derived here from the histories? TRUE when it names the same expedition and the same
-- status value as the chosen expedition's last status; FALSE otherwise (also when the
-- histories hold no expedition for the device); NULL when the logistics system does not
-- list the product (or no products_with_expedition was read).
--
-- DISCARDED order products (order_products.status) are published but are not demand: they have
-- no row here, so neither stock coverage nor installation readiness counts them.
--
-- Decisions where DESIGN.md is silent:
-- * A product without subscription_device_id cannot be matched: NO_EXPEDITION (it is still
--   demand for stock, and it keeps its order's installation from being READY). `position`
--   tells such products apart.
-- * A status without a timestamp is older than every timed status.
-- * A status value missing from status_categories.csv is IN_PROGRESS; the run warns and
--   counts them (done in Rust, next to this file, because it is a warning, not a row).
-- * quantity defaults to 1 when the order does not give it.
--
-- Two steps: `chosen` (a device's expedition) is written and read back before the final
-- join, so the memory of the histories' joins is freed before the orders are read.
--
-- No window functions (polars runs them in memory, slowly): an expedition's last status is
-- the MAX of (timestamp, position) packed in one INT128, joined back; a device's expedition
-- is the FIRST of its candidates once they are ordered by the rule (polars keeps that order
-- within each group).
--
-- Parameters: :as_of = the end of the as_of day in source_timezone, as a UTC timestamp;
-- :stuck_after_days = whole days.
CREATE TABLE chosen AS
WITH history AS (
    SELECT expedition_id, position, status, status_at,
           -- (timestamp, position) as one number: position is 0 <= p < 2^32.
           CAST(COALESCE(CAST(status_at AS BIGINT), -9223372036854775807) AS INT128) * 4294967296 + position AS rank
    FROM expedition_status_history
),
last_rank AS (
    SELECT expedition_id, MAX(rank) AS rank FROM history GROUP BY expedition_id
),
last_status AS (
    SELECT h.expedition_id, h.status AS last_status, h.status_at AS last_status_at,
           COALESCE(CAST(h.status_at AS BIGINT), -9223372036854775807) AS latest
    FROM history h
    JOIN last_rank r ON r.expedition_id = h.expedition_id AND r.rank = h.rank
),
device_expeditions AS (
    SELECT DISTINCT subscription_device_id, expedition_id
    FROM expedition_products
    WHERE subscription_device_id IS NOT NULL
),
candidates AS (
    SELECT d.subscription_device_id, d.expedition_id, s.last_status, s.last_status_at,
           COALESCE(s.latest, -9223372036854775807) AS latest
    FROM device_expeditions d
    LEFT JOIN last_status s ON s.expedition_id = d.expedition_id
)
-- A device's expedition: the latest last status, then the greatest expedition_id.
SELECT subscription_device_id,
       FIRST(expedition_id) AS expedition_id,
       FIRST(last_status) AS last_status,
       FIRST(last_status_at) AS last_status_at,
       COUNT(*) AS expedition_count
FROM (SELECT * FROM candidates ORDER BY subscription_device_id, latest DESC, expedition_id DESC) ranked
GROUP BY subscription_device_id;

SELECT
    o.order_id,
    o.subscription_device_id,
    o.position,
    o.product_code,
    COALESCE(o.quantity, 1) AS quantity,
    o.remaining_payment,
    c.expedition_id,
    COALESCE(c.expedition_count, 0) AS expedition_count,
    c.last_status,
    c.last_status_at,
    CASE WHEN c.expedition_id IS NULL THEN NULL ELSE COALESCE(k.category, 'IN_PROGRESS') END AS status_category,
    (CAST(:as_of AS BIGINT) - CAST(c.last_status_at AS BIGINT)) // 86400000000 AS days_since_last_status,
    CASE
        WHEN c.expedition_id IS NULL THEN 'NO_EXPEDITION'
        WHEN k.category IN ('DELIVERED', 'RETURNED', 'CANCELLED', 'INCIDENCE') THEN k.category
        WHEN c.last_status_at < :as_of - INTERVAL ':stuck_after_days days' THEN 'STUCK'
        ELSE 'IN_PROGRESS'
    END AS state,
    w.expedition_id AS logistics_expedition_id,
    w.current_status AS logistics_status,
    CASE
        WHEN w.subscription_device_id IS NULL THEN NULL
        WHEN c.expedition_id IS NULL THEN FALSE
        ELSE COALESCE(w.expedition_id, '') = c.expedition_id AND COALESCE(w.current_status, '') = COALESCE(c.last_status, '')
    END AS logistics_status_agrees
FROM order_products o
LEFT JOIN chosen c ON c.subscription_device_id = o.subscription_device_id
LEFT JOIN status_categories k ON k.status = c.last_status
LEFT JOIN products_with_expedition w ON w.subscription_device_id = o.subscription_device_id
WHERE COALESCE(o.status, '') <> 'DISCARDED'
