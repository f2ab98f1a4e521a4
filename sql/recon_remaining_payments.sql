-- recon_remaining_payments (finance): one row per external-order journey
-- (order_id_external, journey_index).
--
-- Rule (DESIGN.md 4.3).
--   courier_amount   = transport.delivery_details.remaining_payment.total of the journey
--   order_amount     = sum of remaining_payment of the order products whose
--                      subscription_device_id is among the journey's devices
--   fees_outstanding = sum over those devices (customer_devices.subscription_terminal_id) of
--                      monthly_fee * unpaid_installments + last_installment_fee, from the
--                      installment plan, else the final installment plan
--   state, the first that applies:
--         NO_AMOUNT         the courier total is absent or null
--         ORDER_NOT_FOUND   none of the journey's devices is an order product
--         CURRENCY_NOT_EUR  the courier amount is in another currency (never compared with,
--                           or summed with, euros)
--         MATCH             |courier_amount - order_amount| <= 0.01 EUR
--         AMOUNT_MISMATCH
--   fees_state (process_type FINALPAYMENT only, null otherwise): order_amount against
--   fees_outstanding, MATCH within 0.01 EUR, else AMOUNT_MISMATCH.
-- Amounts are Decimal(38, 10) throughout; the tolerance is compared as a decimal.
--
-- Decisions where DESIGN.md is silent:
-- * A journey that lists a device twice counts it once; a device of another order in the
--   journey counts for the journey (the courier collects for what it carries).
-- * An order product with no remaining_payment owes 0.
-- * A missing currency is EUR (the seed's only currency; the field is optional).
-- * fees_state is AMOUNT_MISMATCH when no device of the journey has fee data (nothing shows
--   the amount is owed), and null when the order amount is unknown (ORDER_NOT_FOUND).
-- * A device's plan is the installment plan when any of its three figures is present.
WITH journey_devices AS (
    SELECT DISTINCT order_id_external, journey_index, subscription_device_id
    FROM external_order_devices
    WHERE subscription_device_id IS NOT NULL
),
product_amounts AS (
    SELECT subscription_device_id, SUM(COALESCE(remaining_payment, 0)) AS remaining_payment
    FROM order_products
    WHERE subscription_device_id IS NOT NULL
    GROUP BY subscription_device_id
),
device_fees AS (
    SELECT subscription_terminal_id AS subscription_device_id,
           CASE
               WHEN monthly_fee IS NOT NULL OR unpaid_installments IS NOT NULL OR last_installment_fee IS NOT NULL
               THEN COALESCE(monthly_fee, 0) * COALESCE(unpaid_installments, 0) + COALESCE(last_installment_fee, 0)
               ELSE COALESCE(final_monthly_fee, 0) * COALESCE(final_unpaid_installments, 0) + COALESCE(final_last_installment_fee, 0)
           END AS fees_outstanding
    FROM customer_devices
),
journey_totals AS (
    SELECT d.order_id_external, d.journey_index,
           COUNT(*) AS devices,
           COUNT(p.subscription_device_id) AS order_devices,
           SUM(p.remaining_payment) AS order_amount,
           COUNT(f.subscription_device_id) AS fee_devices,
           SUM(f.fees_outstanding) AS fees_outstanding
    FROM journey_devices d
    LEFT JOIN product_amounts p ON p.subscription_device_id = d.subscription_device_id
    LEFT JOIN device_fees f ON f.subscription_device_id = d.subscription_device_id
    GROUP BY d.order_id_external, d.journey_index
)
SELECT
    j.order_id_external,
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
        WHEN COALESCE(t.fee_devices, 0) > 0
             AND ABS(t.order_amount - t.fees_outstanding) <= CAST('0.01' AS DECIMAL(38, 10)) THEN 'MATCH'
        ELSE 'AMOUNT_MISMATCH'
    END AS fees_state
FROM external_order_journeys j
LEFT JOIN external_orders e ON e.order_id_external = j.order_id_external
LEFT JOIN journey_totals t ON t.order_id_external = j.order_id_external AND t.journey_index = j.journey_index
