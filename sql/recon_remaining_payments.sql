-- recon_remaining_payments (finance): one row per external-order journey
-- (order_id_external, reexpedition, journey_index).
--
-- Rule (DESIGN.md 4.3). Each re-expedition (R0, R1, ...) is its own record with its own
-- journeys and courier amounts: the key always carries reexpedition.
--   A journey device matches one order product (never DISCARDED): the product with its
--   subscription_device_id in the order whose order_id_crm is the device's
--   subscription.order_id; when no such order holds it, in the latest order that holds it.
--   Each device counts once: a device found in several orders (an original order and a
--   BREAKDOWN_DELIVERY one) is never summed twice.
--   courier_amount   = transport.delivery_details.remaining_payment.total of the journey
--   order_amount     = sum of remaining_payment of the matched products
--   fees_outstanding = sum over the matched devices (customer_devices.subscription_terminal_id)
--                      of monthly_fee * unpaid_installments + last_installment_fee, from the
--                      installment plan, else the final installment plan
--   state, the first that applies:
--         NO_AMOUNT         the courier total is absent or null
--         ORDER_NOT_FOUND   none of the journey's devices is an order product
--         CURRENCY_NOT_EUR  the courier amount is in another currency (never compared with,
--                           or summed with, euros)
--         MATCH             |courier_amount - order_amount| <= 0.01 EUR
--         AMOUNT_MISMATCH
--   fees_state (process_type FINALPAYMENT only, null otherwise), the first that applies:
--         NO_FEES_RECORD    a matched device has no customer_devices record (an unknown fee is
--                           never reported as a mismatch)
--         MATCH             |order_amount - fees_outstanding| <= 0.01 EUR
--         AMOUNT_MISMATCH
-- Amounts are Decimal(38, 10) throughout; the tolerance is compared as a decimal.
--
-- Decisions where DESIGN.md is silent:
-- * Orders carry no date (seed 004's NewOrderData has none), so "the latest order" is the one
--   with the greatest order_id; several orders with the device's order_id_crm: the greatest too.
-- * A journey that lists a device twice counts it once; a device of another order in the
--   journey counts for the journey (the courier collects for what it carries).
-- * An order product with no remaining_payment owes 0.
-- * A missing currency is EUR (the seed's only currency; the field is optional).
-- * fees_state is null when the order amount is unknown (ORDER_NOT_FOUND).
-- * A device's plan is the installment plan when any of its three figures is present.
--
-- Five steps, each written and read back before the next starts, so that no step holds the
-- memory of the one before (and the two tables read twice are computed once):
-- `journey_devices`, `products`, `matched` (a journey device's order), `journey_totals`, then
-- the journeys.
CREATE TABLE journey_devices AS
SELECT order_id_external, reexpedition, journey_index, subscription_device_id,
       MAX(subscription_order_id) AS subscription_order_id
FROM external_order_devices
WHERE subscription_device_id IS NOT NULL
GROUP BY order_id_external, reexpedition, journey_index, subscription_device_id;

-- Demand only: a DISCARDED product is published in order_products but owes nothing here.
CREATE TABLE products AS
SELECT p.order_id, p.subscription_device_id, COALESCE(p.remaining_payment, 0) AS remaining_payment,
       o.order_id_crm
FROM order_products p
LEFT JOIN orders o ON o.order_id = p.order_id
WHERE p.subscription_device_id IS NOT NULL AND COALESCE(p.status, '') <> 'DISCARDED';

-- The order the device names (its subscription.order_id is the order's order_id_crm).
CREATE TABLE matched AS
WITH named AS (
    SELECT d.order_id_external, d.reexpedition, d.journey_index, d.subscription_device_id,
           MAX(p.order_id) AS order_id
    FROM journey_devices d
    JOIN products p ON p.subscription_device_id = d.subscription_device_id AND p.order_id_crm = d.subscription_order_id
    GROUP BY d.order_id_external, d.reexpedition, d.journey_index, d.subscription_device_id
),
-- Else the latest order holding the device.
latest AS (
    SELECT subscription_device_id, MAX(order_id) AS order_id FROM products GROUP BY subscription_device_id
)
SELECT d.order_id_external, d.reexpedition, d.journey_index, d.subscription_device_id,
       COALESCE(n.order_id, l.order_id) AS order_id
FROM journey_devices d
LEFT JOIN named n ON n.order_id_external = d.order_id_external AND n.reexpedition = d.reexpedition
    AND n.journey_index = d.journey_index AND n.subscription_device_id = d.subscription_device_id
LEFT JOIN latest l ON l.subscription_device_id = d.subscription_device_id;

CREATE TABLE journey_totals AS
WITH device_fees AS (
    SELECT subscription_terminal_id AS subscription_device_id,
           CASE
               WHEN monthly_fee IS NOT NULL OR unpaid_installments IS NOT NULL OR last_installment_fee IS NOT NULL
               THEN COALESCE(monthly_fee, 0) * COALESCE(unpaid_installments, 0) + COALESCE(last_installment_fee, 0)
               ELSE COALESCE(final_monthly_fee, 0) * COALESCE(final_unpaid_installments, 0) + COALESCE(final_last_installment_fee, 0)
           END AS fees_outstanding
    FROM customer_devices
)
SELECT m.order_id_external, m.reexpedition, m.journey_index,
       COUNT(*) AS devices,
       COUNT(m.order_id) AS order_devices,
       SUM(p.remaining_payment) AS order_amount,
       COUNT(CASE WHEN m.order_id IS NOT NULL THEN f.subscription_device_id END) AS fee_devices,
       SUM(CASE WHEN m.order_id IS NOT NULL THEN f.fees_outstanding END) AS fees_outstanding
FROM matched m
LEFT JOIN products p ON p.order_id = m.order_id AND p.subscription_device_id = m.subscription_device_id
LEFT JOIN device_fees f ON f.subscription_device_id = m.subscription_device_id
GROUP BY m.order_id_external, m.reexpedition, m.journey_index;

SELECT
    j.order_id_external,
    j.reexpedition,
    j.journey_index,
    e.process_type,
    j.remaining_payment_total AS courier_amount,
    COALESCE(j.remaining_payment_currency, 'EUR') AS currency,
    t.order_amount,
    t.fees_outstanding,
    COALESCE(t.devices, 0) AS devices,
    COALESCE(t.order_devices, 0) AS order_devices,
    j.remaining_payment_total - t.order_amount AS difference,
    CASE
        WHEN j.remaining_payment_total IS NULL THEN 'NO_AMOUNT'
        WHEN COALESCE(t.order_devices, 0) = 0 THEN 'ORDER_NOT_FOUND'
        WHEN COALESCE(j.remaining_payment_currency, 'EUR') <> 'EUR' THEN 'CURRENCY_NOT_EUR'
        WHEN ABS(j.remaining_payment_total - t.order_amount) <= CAST('0.01' AS DECIMAL(38, 10)) THEN 'MATCH'
        ELSE 'AMOUNT_MISMATCH'
    END AS state,
    CASE
        WHEN COALESCE(e.process_type, '') <> 'FINALPAYMENT' THEN NULL
        WHEN COALESCE(t.order_devices, 0) = 0 THEN NULL
        WHEN t.fee_devices < t.order_devices THEN 'NO_FEES_RECORD'
        WHEN ABS(t.order_amount - t.fees_outstanding) <= CAST('0.01' AS DECIMAL(38, 10)) THEN 'MATCH'
        ELSE 'AMOUNT_MISMATCH'
    END AS fees_state
FROM external_order_journeys j
LEFT JOIN external_orders e ON e.order_id_external = j.order_id_external AND e.reexpedition = j.reexpedition
LEFT JOIN journey_totals t ON t.order_id_external = j.order_id_external AND t.reexpedition = j.reexpedition
    AND t.journey_index = j.journey_index
