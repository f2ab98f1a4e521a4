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
-- Parameters: :as_of = the end of the as_of day in source_timezone, as a UTC timestamp;
-- :stuck_after_days = whole days.
WITH last_status AS (
    SELECT expedition_id, status AS last_status, status_at AS last_status_at
    FROM (
        SELECT expedition_id, status, status_at,
               ROW_NUMBER() OVER (
                   PARTITION BY expedition_id
                   ORDER BY COALESCE(CAST(status_at AS BIGINT), -9223372036854775807) DESC, position DESC
               ) AS rn
        FROM expedition_status_history
    ) ranked
    WHERE rn = 1
),
device_expeditions AS (
    SELECT DISTINCT subscription_device_id, expedition_id
    FROM expedition_products
    WHERE subscription_device_id IS NOT NULL
),
candidates AS (
    SELECT d.subscription_device_id, d.expedition_id, s.last_status, s.last_status_at,
           COALESCE(CAST(s.last_status_at AS BIGINT), -9223372036854775807) AS latest
    FROM device_expeditions d
    LEFT JOIN last_status s ON s.expedition_id = d.expedition_id
),
chosen AS (
    SELECT subscription_device_id, expedition_id, last_status, last_status_at, expedition_count
    FROM (
        SELECT subscription_device_id, expedition_id, last_status, last_status_at,
               ROW_NUMBER() OVER (PARTITION BY subscription_device_id ORDER BY latest DESC, expedition_id DESC) AS rn,
               COUNT(*) OVER (PARTITION BY subscription_device_id) AS expedition_count
        FROM candidates
    ) ranked
    WHERE rn = 1
)
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
    END AS state
FROM order_products o
LEFT JOIN chosen c ON c.subscription_device_id = o.subscription_device_id
LEFT JOIN status_categories k ON k.status = c.last_status
