# Copyright (c) mmseg_zegot contributors. All rights reserved.
