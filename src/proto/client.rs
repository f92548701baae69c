//! Sans-IO MS-WDSMT/MS-WDSMA client (being written).
