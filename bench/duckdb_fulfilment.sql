-- recon_order_fulfilment in DuckDB, the rule of sql/recon_order_fulfilment.sql, for the
-- benchmark. Parameters (replaced by bench/run.sh): {lake}, {day}, {as_of}, {out}, {threads},
-- {categories}.
SET threads = {threads};
SET preserve_insertion_order = false;
SET TimeZone = 'UTC';

COPY (
WITH status_categories AS (SELECT * FROM read_csv('{categories}', header = true)),
history AS (SELECT expedition_id, position, status, status_at FROM read_parquet('{lake}/expedition_status_history/run_date={day}/*.parquet')),
last_status AS (
    SELECT expedition_id, status AS last_status, status_at AS last_status_at
    FROM history
    QUALIFY row_number() OVER (PARTITION BY expedition_id ORDER BY status_at DESC NULLS LAST, position DESC) = 1
),
device_expeditions AS (
    SELECT DISTINCT subscription_device_id, expedition_id
    FROM read_parquet('{lake}/expedition_products/run_date={day}/*.parquet')
    WHERE subscription_device_id IS NOT NULL
),
chosen AS (
    SELECT d.subscription_device_id, d.expedition_id, s.last_status, s.last_status_at,
           count(*) OVER (PARTITION BY d.subscription_device_id) AS expedition_count
    FROM device_expeditions d LEFT JOIN last_status s USING (expedition_id)
    QUALIFY row_number() OVER (PARTITION BY d.subscription_device_id ORDER BY s.last_status_at DESC NULLS LAST, d.expedition_id DESC) = 1
)
SELECT o.order_id, o.subscription_device_id, o.position, o.product_code, coalesce(o.quantity, 1) AS quantity,
       o.remaining_payment, c.expedition_id, coalesce(c.expedition_count, 0) AS expedition_count,
       c.last_status, c.last_status_at,
       CASE WHEN c.expedition_id IS NULL THEN NULL ELSE coalesce(k.category, 'IN_PROGRESS') END AS status_category,
       (epoch_us(TIMESTAMPTZ '{as_of}') - epoch_us(c.last_status_at)) // 86400000000 AS days_since_last_status,
       CASE
           WHEN c.expedition_id IS NULL THEN 'NO_EXPEDITION'
           WHEN k.category IN ('DELIVERED', 'RETURNED', 'CANCELLED', 'INCIDENCE') THEN k.category
           WHEN c.last_status_at < TIMESTAMPTZ '{as_of}' - INTERVAL 7 DAY THEN 'STUCK'
           ELSE 'IN_PROGRESS'
       END AS state,
       w.expedition_id AS logistics_expedition_id,
       w.current_status AS logistics_status,
       CASE
           WHEN w.subscription_device_id IS NULL THEN NULL
           WHEN c.expedition_id IS NULL THEN FALSE
           ELSE coalesce(w.expedition_id, '') = c.expedition_id AND coalesce(w.current_status, '') = coalesce(c.last_status, '')
       END AS logistics_status_agrees
FROM read_parquet('{lake}/order_products/run_date={day}/*.parquet') o
LEFT JOIN chosen c ON c.subscription_device_id = o.subscription_device_id
LEFT JOIN status_categories k ON k.status = c.last_status
-- The logistics system's own view of the product (the same comparison as the rule's).
LEFT JOIN read_parquet('{lake}/products_with_expedition/run_date={day}/*.parquet') w
       ON w.subscription_device_id = o.subscription_device_id
-- Discarded order lines are not demand (sql/recon_order_fulfilment.sql).
WHERE coalesce(o.status, '') <> 'DISCARDED'
) TO '{out}' (FORMAT parquet, COMPRESSION zstd);
