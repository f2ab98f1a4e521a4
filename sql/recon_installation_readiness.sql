-- recon_installation_readiness: one row per order with a work_order.
--
-- Rule (DESIGN.md 4.4). The appointment is the one whose appointment_id or external_id
-- equals work_order (the latest by lastUpdate). A device's delivery instant is its
-- fulfilment's last status time when that status is DELIVERED-category.
--   state, the first that applies:
--         NO_APPOINTMENT   no appointment for the work order
--         LATE             a device was delivered after valid_for_start
--         READY            every device was delivered before it
--         AT_RISK          valid_for_start is within 48 h after :as_of, or already past
--         PENDING
--
-- Decisions where DESIGN.md is silent:
-- * "Before" includes the very instant: a device delivered at valid_for_start is not late.
-- * An appointment without validFor falls back to the validForAppointment role; with
--   neither it is PENDING (nothing is scheduled yet to be late or at risk for).
-- * Ties in lastUpdate go to the greater appointment_id; an appointment without lastUpdate
--   is older than any with one.
-- * An order's devices are all its order products (fulfilment rows), including products
--   without a device id, which are never delivered. An order with no products is READY.
-- * Several orders with the same work order each get their row, with the same appointment.
WITH work_orders AS (
    SELECT order_id, work_order
    FROM orders
    WHERE work_order IS NOT NULL AND work_order <> ''
),
matches AS (
    SELECT w.order_id, a.appointment_id,
           COALESCE(CAST(a.last_update AS BIGINT), -9223372036854775807) AS latest,
           COALESCE(a.valid_for_start, a.valid_for_appointment_start) AS valid_for_start
    FROM work_orders w
    JOIN appointments a ON a.appointment_id = w.work_order
    UNION ALL
    SELECT w.order_id, a.appointment_id,
           COALESCE(CAST(a.last_update AS BIGINT), -9223372036854775807) AS latest,
           COALESCE(a.valid_for_start, a.valid_for_appointment_start) AS valid_for_start
    FROM work_orders w
    JOIN appointments a ON a.external_id = w.work_order
),
appointment AS (
    SELECT order_id, appointment_id, valid_for_start
    FROM (
        SELECT DISTINCT ON (order_id) order_id, appointment_id, valid_for_start, latest
        FROM matches
        ORDER BY order_id, latest DESC, appointment_id DESC
    ) ranked
),
devices AS (
    SELECT order_id,
           COUNT(*) AS devices,
           SUM(CASE WHEN state = 'DELIVERED' THEN 1 ELSE 0 END) AS delivered_devices,
           MAX(CASE WHEN state = 'DELIVERED' THEN last_status_at END) AS last_delivered_at
    FROM recon_order_fulfilment
    GROUP BY order_id
)
SELECT
    w.order_id,
    w.work_order,
    a.appointment_id,
    a.valid_for_start,
    COALESCE(d.devices, 0) AS devices,
    COALESCE(d.delivered_devices, 0) AS delivered_devices,
    d.last_delivered_at,
    CASE
        WHEN a.appointment_id IS NULL THEN 'NO_APPOINTMENT'
        WHEN a.valid_for_start IS NULL THEN 'PENDING'
        WHEN d.last_delivered_at > a.valid_for_start THEN 'LATE'
        WHEN COALESCE(d.delivered_devices, 0) = COALESCE(d.devices, 0) THEN 'READY'
        WHEN a.valid_for_start <= :as_of + INTERVAL '48 hours' THEN 'AT_RISK'
        ELSE 'PENDING'
    END AS state
FROM work_orders w
LEFT JOIN appointment a ON a.order_id = w.order_id
LEFT JOIN devices d ON d.order_id = w.order_id
