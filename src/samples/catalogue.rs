//! Who sells and what: the tenants and the product catalogue, and an order's products.

/// Tenants: folder name, the tenant id the appointments carry, the work-order prefix.
pub(super) const TENANTS: &[(&str, &str, &str)] = &[
    ("masmovil", "16", "MYSIM_"),
    ("yoigo", "12", "Y"),
    ("pepephone", "21", "PP"),
    ("lebara", "31", "LB_"),
];

/// Products: code, description, type.
pub(super) const CATALOGUE: &[(&str, &str, &str)] = &[
    ("RM58AV3N2", "Caja de voz Ad Hoc v3", "STB"),
    ("ZTEF680", "Router ZTE F680 FTTH", "ROUTER"),
    ("HGU-2741", "Router Askey RTF8115VW", "ROUTER"),
    ("SIM-4G-T", "Tarjeta SIM 4G triple corte", "SIM"),
    ("SIM-5G-E", "eSIM 5G", "SIM"),
    ("IPH15-128", "iPhone 15 128GB", "TERMINAL"),
    ("SGA55-128", "Samsung Galaxy A55 128GB", "TERMINAL"),
    ("XRN13-256", "Xiaomi Redmi Note 13 256GB", "TERMINAL"),
    ("AGTV-4K", "Agile TV 4K Box", "STB"),
    ("APTV-4K", "Apple TV 4K", "STB_APPLE"),
    ("MESH-W6", "Extensor WiFi Mesh 6", "WIFIMESH"),
    ("SMH-CAM1", "Cámara Smart Home", "SMARTHOME"),
    ("ONT-HUA", "ONT Huawei HG8010", "ROUTER"),
    ("TAB-S9FE", "Samsung Tab S9 FE", "TERMINAL"),
    ("WATCH-SE", "Apple Watch SE", "GENERIC"),
    ("TV-LG43", "LG Smart TV 43\"", "SMART_TV"),
];

/// A product of an order.
pub(super) struct Product {
    /// `subscription_device_id`; `None` for the data-quality case of a product without one.
    pub device: Option<String>,
    /// Catalogue code.
    pub code: &'static str,
    /// What is left to pay, in cents.
    pub remaining: i64,
    /// Units.
    pub quantity: i64,
}
