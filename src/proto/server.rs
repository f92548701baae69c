//! Sans-IO MS-WDSMT/MS-WDSMA server (being written).
