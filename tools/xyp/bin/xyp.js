#!/usr/bin/env node
'use strict';
require('../../runtime/register');
require('../src/main.ts');
